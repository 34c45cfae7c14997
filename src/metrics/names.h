/* SPDX-License-Identifier: Apache-2.0 */
// Name rules of the Prometheus data model, checked at registration.
#pragma once

#include <string_view>

namespace cm {

// [a-zA-Z_:][a-zA-Z0-9_:]*, not starting with "__".
bool valid_metric_name(std::string_view s);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__".
bool valid_label_name(std::string_view s);

}  // namespace cm
