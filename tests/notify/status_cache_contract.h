// The status cache's contract (notify/status_cache.h), run against every
// implementation: a factory makes an empty cache with the given limits.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "notify/status_cache.h"

namespace settle::notify {

struct CacheFactory {
  std::string name;
  std::function<std::unique_ptr<StatusCache>(CacheLimits)> make;
};

class StatusCacheContract : public ::testing::TestWithParam<CacheFactory> {};

inline std::string factory_name(const ::testing::TestParamInfo<CacheFactory>& info) { return info.param.name; }

}  // namespace settle::notify
