/* SPDX-License-Identifier: Apache-2.0 */
// Parser for the "key=value&key=value" option strings of the C ABI (and the
// query part of backend URIs). Values are percent-decoded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cm {

class Options {
 public:
  // Parses text (NULL or "" gives no options). Throws Error(CM_EINVAL) for a
  // malformed item, a bad percent escape or a repeated key. `what` names the
  // option string in messages ("registry options").
  static Options parse(const char* text, std::string_view what);

  // Throws Error(CM_EINVAL) naming the first key not in `known`.
  void check_known(std::initializer_list<std::string_view> known) const;
  void check_known(const std::vector<std::string_view>& known) const;

  bool has(std::string_view key) const;
  // Adds key=value (already decoded) unless key is present; true if added.
  bool add_default(std::string_view key, std::string_view value);
  // The value, or fallback when absent.
  std::string get(std::string_view key, std::string_view fallback) const;
  // An integer in [lo, hi], or fallback when absent; throws for bad values.
  int64_t get_int(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const;
  bool get_bool(std::string_view key, bool fallback) const;
  // A byte size in [lo, hi]: an integer with an optional unit B, KiB, MiB,
  // GiB (powers of 1024) or KB, MB, GB (powers of 1000): "64MiB", "1000".
  int64_t get_size(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const;

  // The value as written, before percent-decoding ("" when absent): for
  // values with a structure of their own, decoded piece by piece.
  std::string get_raw(std::string_view key) const;

  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  std::string what_;
  std::vector<std::pair<std::string, std::string>> items_;  // decoded
  std::vector<std::string> raw_;                            // same order, as written
};

// Decodes %XX escapes (and nothing else). Throws Error(CM_EINVAL) on a bad escape.
std::string percent_decode(std::string_view s, std::string_view what);

// Splits s on sep.
std::vector<std::string_view> split(std::string_view s, char sep);

}  // namespace cm
