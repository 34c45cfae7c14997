// SPDX-License-Identifier: Apache-2.0
// Option strings: "key=value&key=value", values percent-decoded.
#include "util/options.h"

#include <charconv>
#include <limits>

#include "core/error.h"

namespace cm {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, std::string_view what) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    int hi = i + 2 < s.size() ? hex_digit(s[i + 1]) : -1;
    int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      throw Error(CM_EINVAL, std::string(what) + ": bad percent escape in \"" + std::string(s) + "\"");
    if (hi == 0 && lo == 0)
      throw Error(CM_EINVAL, std::string(what) + ": %00 is not allowed in \"" + std::string(s) + "\"");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Options Options::parse(const char* text, std::string_view what) {
  Options o;
  o.what_ = what;
  if (!text || !*text) return o;
  for (std::string_view item : split(text, '&')) {
    if (item.empty()) continue;  // tolerate "a=1&&b=2" and a trailing '&'
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0)
      throw Error(CM_EINVAL, std::string(what) + ": expected key=value, got \"" + std::string(item) + "\"");
    std::string key(item.substr(0, eq));
    if (o.has(key)) throw Error(CM_EINVAL, std::string(what) + ": option \"" + key + "\" given twice");
    o.items_.emplace_back(key, percent_decode(item.substr(eq + 1), std::string(what) + ": option \"" + key + "\""));
    o.raw_.emplace_back(item.substr(eq + 1));
  }
  return o;
}

void Options::check_known(std::initializer_list<std::string_view> known) const {
  check_known(std::vector<std::string_view>(known));
}

void Options::check_known(const std::vector<std::string_view>& known) const {
  for (const auto& [k, v] : items_) {
    bool ok = false;
    for (std::string_view n : known) ok = ok || n == k;
    if (!ok) {
      std::string list;
      for (std::string_view n : known) list += (list.empty() ? "" : ", ") + std::string(n);
      throw Error(CM_EINVAL, what_ + ": unknown option \"" + k + "\" (known: " + list + ")");
    }
  }
}

bool Options::has(std::string_view key) const {
  for (const auto& kv : items_)
    if (kv.first == key) return true;
  return false;
}

bool Options::add_default(std::string_view key, std::string_view value) {
  if (has(key)) return false;
  items_.emplace_back(std::string(key), std::string(value));
  raw_.emplace_back(value);
  return true;
}

std::string Options::get(std::string_view key, std::string_view fallback) const {
  for (const auto& kv : items_)
    if (kv.first == key) return kv.second;
  return std::string(fallback);
}

std::string Options::get_raw(std::string_view key) const {
  for (size_t i = 0; i < items_.size(); ++i)
    if (items_[i].first == key) return raw_[i];
  return {};
}

int64_t Options::get_int(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const {
  if (!has(key)) return fallback;
  std::string v = get(key, "");
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty() || n < lo || n > hi)
    throw Error(CM_EINVAL, what_ + ": option \"" + std::string(key) + "\" must be an integer in [" +
                               std::to_string(lo) + ", " + std::to_string(hi) + "], got \"" + v + "\"");
  return n;
}

int64_t Options::get_size(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const {
  if (!has(key)) return fallback;
  std::string v = get(key, "");
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  std::string_view unit(p, static_cast<size_t>(v.data() + v.size() - p));
  int64_t mul = 0;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "KiB") mul = int64_t{1} << 10;
  else if (unit == "MiB") mul = int64_t{1} << 20;
  else if (unit == "GiB") mul = int64_t{1} << 30;
  else if (unit == "KB") mul = 1000;
  else if (unit == "MB") mul = 1000 * 1000;
  else if (unit == "GB") mul = 1000 * 1000 * 1000;
  bool ok = ec == std::errc() && p != v.data() && mul != 0 && n >= 0 &&
            n <= std::numeric_limits<int64_t>::max() / mul;
  if (ok) n *= mul;
  if (!ok || n < lo || n > hi)
    throw Error(CM_EINVAL, what_ + ": option \"" + std::string(key) + "\" must be a size in [" + std::to_string(lo) +
                               ", " + std::to_string(hi) + "] bytes (units B, KiB, MiB, GiB, KB, MB, GB), got \"" +
                               v + "\"");
  return n;
}

bool Options::get_bool(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  std::string v = get(key, "");
  if (v == "true" || v == "1" || v == "on" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "off" || v == "no") return false;
  throw Error(CM_EINVAL, what_ + ": option \"" + std::string(key) + "\" must be true or false, got \"" + v + "\"");
}

}  // namespace cm
