/* SPDX-License-Identifier: Apache-2.0 */
// Text helpers shared by the renderers: an output buffer that is handed to the
// caller without a copy, number formatting, escaping, UTF-8 validation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace cm {

// A growable malloc'd buffer: the renderers stream into it and hand it to the
// caller as-is (released with cm_free), so output is never copied once more.
class OutBuf {
 public:
  OutBuf() = default;
  OutBuf(const OutBuf&) = delete;
  OutBuf& operator=(const OutBuf&) = delete;
  ~OutBuf();

  void reserve(size_t n);
  void append(std::string_view s) { append(s.data(), s.size()); }
  void append(const char* p, size_t n) {
    if (len_ + n + 1 > cap_) grow(n);
    if (n) std::memcpy(data_ + len_, p, n);
    len_ += n;
  }
  void push(char c) {
    if (len_ + 2 > cap_) grow(1);
    data_[len_++] = c;
  }
  void append_u64(uint64_t v);
  // Shortest round-trip form; "+Inf", "-Inf", "NaN" for the non-finite values.
  void append_double(double v);
  // As append_double, but integral values get ".0" ("1.0"): the canonical
  // form OpenMetrics asks for in "le" label values.
  void append_le(double v);

  void clear() { len_ = 0; }
  size_t size() const { return len_; }
  std::string_view view() const { return {data_ ? data_ : "", len_}; }
  // NUL-terminates and gives up ownership (free with cm_free / free).
  char* release();

 private:
  void grow(size_t need);
  char* data_ = nullptr;
  size_t len_ = 0;
  size_t cap_ = 0;
};

// Writes the shortest round-trip form of v into buf (at least 32 bytes) and
// returns the length. Non-finite: "+Inf", "-Inf", "NaN".
size_t format_double(double v, char* buf);

// Label value escaping of the text formats: \\, \" and \n.
void append_label_escaped(OutBuf& out, std::string_view s);
// HELP escaping: \\ and \n; OpenMetrics also escapes \".
void append_help_escaped(OutBuf& out, std::string_view s, bool escape_quote);
// A JSON string literal, quotes included (control characters as \uXXXX).
void append_json_string(OutBuf& out, std::string_view s);

bool valid_utf8(std::string_view s);

}  // namespace cm
