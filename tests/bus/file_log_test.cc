#include "bus/file_log_bus.h"

#include <gtest/gtest.h>

namespace settle::bus {
namespace {}  // namespace
}  // namespace settle::bus
