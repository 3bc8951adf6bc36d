// The dashboard: one HTML page with its script inline, compiled into the
// binary (no front-end toolchain). It asks for a key once (kept in the tab's
// sessionStorage), exchanges it for a stream token, opens
// /v1/stream/status and renders per merchant the open batches' running
// totals, closed batches with payout and payout date, failed closes, and the
// feed's health, live; the layout reflows to one column on a phone.
#pragma once

#include <string_view>

namespace settle::notify {

std::string_view dashboard_html();

}  // namespace settle::notify
