// SPDX-License-Identifier: Apache-2.0
// The built-in dashboard's files (dashboard.cpp): served by the endpoint at
// /, /dashboard.js and /dashboard.css with kDashboardCsp.
#pragma once

namespace cm {

extern const char* const kDashboardHtml;
extern const char* const kDashboardJs;
extern const char* const kDashboardCss;
extern const char* const kDashboardCsp;

}  // namespace cm
