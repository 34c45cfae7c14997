// SPDX-License-Identifier: Apache-2.0
// Output buffer, number formatting and escaping for the exposition formats.
#include "util/text.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

namespace cm {

OutBuf::~OutBuf() { std::free(data_); }

void OutBuf::reserve(size_t n) {
  if (n + 1 <= cap_) return;
  void* p = std::realloc(data_, n + 1);  // exactly: the caller knows the size
  if (!p) throw std::bad_alloc();
  data_ = static_cast<char*>(p);
  cap_ = n + 1;
}

void OutBuf::grow(size_t need) {
  size_t cap = cap_ ? cap_ : 256;
  while (cap < len_ + need + 1) cap *= 2;
  void* p = std::realloc(data_, cap);
  if (!p) throw std::bad_alloc();
  data_ = static_cast<char*>(p);
  cap_ = cap;
}

char* OutBuf::release() {
  if (len_ + 1 > cap_) grow(1);
  data_[len_] = '\0';
  char* p = data_;
  data_ = nullptr;
  len_ = cap_ = 0;
  return p;
}

void OutBuf::append_u64(uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  append(buf, static_cast<size_t>(r.ptr - buf));
}

size_t format_double(double v, char* buf) {
  if (std::isnan(v)) {
    std::memcpy(buf, "NaN", 3);
    return 3;
  }
  if (std::isinf(v)) {
    std::memcpy(buf, v > 0 ? "+Inf" : "-Inf", 4);
    return 4;
  }
  // Integral values (most counts): plain integer digits.
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    char* p = buf;
    if (std::signbit(v)) *p++ = '-';
    auto r = std::to_chars(p, buf + 32, static_cast<uint64_t>(std::fabs(v)));
    return static_cast<size_t>(r.ptr - buf);
  }
  // Shortest round-trip digits, laid out as Python's repr() does (and so as
  // the Python client and most readers expect): fixed notation for decimal
  // exponents in [-4, 16), scientific otherwise.
  char sci[32];
  auto r = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  size_t n = static_cast<size_t>(r.ptr - sci);
  sci[n] = '\0';  // for atoi
  const char* e = static_cast<const char*>(std::memchr(sci, 'e', n));
  int exp = std::atoi(e + 1);
  if (exp < -4 || exp >= 16) {
    std::memcpy(buf, sci, n);
    return n;
  }
  // Digits without sign and point: sci is "[-]d[.ddd]e±XX".
  const char* m = sci[0] == '-' ? sci + 1 : sci;
  char digits[20];
  size_t nd = 0;
  for (const char* p = m; p < e; ++p)
    if (*p != '.') digits[nd++] = *p;
  char* out = buf;
  if (m != sci) *out++ = '-';
  if (exp < 0) {
    *out++ = '0';
    *out++ = '.';
    for (int i = -1; i > exp; --i) *out++ = '0';
    std::memcpy(out, digits, nd);
    out += nd;
  } else {
    size_t whole = static_cast<size_t>(exp) + 1;
    for (size_t i = 0; i < whole; ++i) *out++ = i < nd ? digits[i] : '0';
    if (nd > whole) {
      *out++ = '.';
      std::memcpy(out, digits + whole, nd - whole);
      out += nd - whole;
    }
  }
  return static_cast<size_t>(out - buf);
}

void OutBuf::append_double(double v) {
  char buf[32];
  append(buf, format_double(v, buf));
}

void OutBuf::append_le(double v) {
  // OpenMetrics canonical numbers (what Go's %g and the Python client write,
  // plus ".0" on integers): scientific for exponents < -4 or >= 6.
  char buf[40];
  if (std::isfinite(v) && v != 0) {
    auto r = std::to_chars(buf, buf + 32, v, std::chars_format::scientific);
    *r.ptr = '\0';
    int exp = std::atoi(static_cast<const char*>(std::memchr(buf, 'e', static_cast<size_t>(r.ptr - buf))) + 1);
    if (exp < -4 || exp >= 6) return append(buf, static_cast<size_t>(r.ptr - buf));
  }
  size_t n = format_double(v, buf);
  if (std::isfinite(v) && !std::memchr(buf, '.', n) && !std::memchr(buf, 'e', n)) {
    buf[n++] = '.';
    buf[n++] = '0';
  }
  append(buf, n);
}

void append_label_escaped(OutBuf& out, std::string_view s) {
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* rep = nullptr;
    switch (s[i]) {
      case '\\': rep = "\\\\"; break;
      case '"': rep = "\\\""; break;
      case '\n': rep = "\\n"; break;
      default: continue;
    }
    out.append(s.substr(start, i - start));
    out.append(rep, 2);
    start = i + 1;
  }
  out.append(s.substr(start));
}

void append_help_escaped(OutBuf& out, std::string_view s, bool escape_quote) {
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* rep = nullptr;
    if (s[i] == '\\') rep = "\\\\";
    else if (s[i] == '\n') rep = "\\n";
    else if (s[i] == '"' && escape_quote) rep = "\\\"";
    else continue;
    out.append(s.substr(start, i - start));
    out.append(rep, 2);
    start = i + 1;
  }
  out.append(s.substr(start));
}

void append_json_string(OutBuf& out, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  out.push('"');
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.substr(start, i - start));
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default: {
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        out.append(u, 6);
      }
    }
    start = i + 1;
  }
  out.append(s.substr(start));
  out.push('"');
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += len;
  }
  return true;
}

}  // namespace cm
