/* SPDX-License-Identifier: Apache-2.0 */
// What the harnesses share: splitting an input into fields, the failure
// statuses that hostile input must never produce, and independent checks of
// the three renderings (every line a well-formed sample or comment, JSON that
// parses, UTF-8 throughout). A failed check aborts: libFuzzer keeps the input.
#pragma once

#include <cachemeter/cachemeter.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

[[noreturn]] inline void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "FUZZ CHECK FAILED: %s\n%.*s\n", what, static_cast<int>(detail.size() > 4000 ? 4000 : detail.size()),
               detail.data());
  std::abort();
}

// data split on sep into at most max fields (the last one keeps the rest).
inline std::vector<std::string> fields(const uint8_t* data, size_t size, char sep, size_t max) {
  std::vector<std::string> out;
  std::string_view s(reinterpret_cast<const char*>(data), size);
  while (out.size() + 1 < max) {
    size_t p = s.find(sep);
    if (p == std::string_view::npos) break;
    out.emplace_back(s.substr(0, p));
    s.remove_prefix(p + 1);
  }
  out.emplace_back(s);
  return out;
}

// A failing call must fail with a status of ours and a message: an internal
// error is a C++ exception the code did not expect (std::out_of_range from a
// substr, ...), which hostile input must never reach.
inline void check_status(int rc, const char* api) {
  if (rc == CM_OK || rc == CM_MISS) return;
  const char* msg = cm_errmsg();
  if (std::strcmp(cm_status_name(rc), "CM_UNKNOWN") == 0) fail(api, "unknown status " + std::to_string(rc));
  if (!msg || !*msg) fail(api, "failed without a message");
  // guard() writes "<api>: internal error: ..." (the message may quote the
  // input further on, so only that place counts).
  const char* colon = std::strchr(msg, ':');
  if (colon && (std::strncmp(colon, ": internal error", 16) == 0 || std::strncmp(colon, ": unknown internal error", 24) == 0))
    fail(api, msg);
}

// ---- UTF-8 -------------------------------------------------------------------

inline bool utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = cp << 6 | (d & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;  // overlong
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// ---- Prometheus text 0.0.4 / OpenMetrics 1.0 ------------------------------------

inline bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
inline bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

inline bool number(std::string_view v) {
  if (v == "+Inf" || v == "-Inf" || v == "NaN") return true;
  if (v.empty() || v.size() > 64) return false;
  std::string t(v);
  char* e = nullptr;
  double d = std::strtod(t.c_str(), &e);
  return e == t.c_str() + t.size() && std::isfinite(d);
}

// One sample line: name{label="value",...} value
inline bool sample_line(std::string_view l) {
  size_t i = 0;
  if (l.empty() || !name_start(l[0])) return false;
  while (i < l.size() && name_char(l[i])) ++i;
  if (i < l.size() && l[i] == '{') {
    ++i;
    bool first = true;
    for (;;) {
      if (i < l.size() && l[i] == '}') { ++i; break; }
      if (!first) {
        if (i >= l.size() || l[i] != ',') return false;
        ++i;
      }
      first = false;
      if (i >= l.size() || !name_start(l[i]) || l[i] == ':') return false;
      while (i < l.size() && name_char(l[i]) && l[i] != ':') ++i;
      if (l.substr(i, 2) != "=\"") return false;
      i += 2;
      for (;;) {
        if (i >= l.size()) return false;
        char c = l[i++];
        if (c == '"') break;
        if (c == '\\') {
          if (i >= l.size() || (l[i] != '\\' && l[i] != '"' && l[i] != 'n')) return false;
          ++i;
        }
      }
    }
  }
  if (i >= l.size() || l[i] != ' ') return false;
  return number(l.substr(i + 1));
}

inline void check_text(std::string_view out, bool om) {
  if (!utf8(out)) fail("exposition is not UTF-8", out);
  if (!out.empty() && out.back() != '\n') fail("exposition does not end in a newline", out);
  if (om && (out.size() < 6 || out.substr(out.size() - 6) != "# EOF\n")) fail("OpenMetrics without # EOF", out);
  size_t start = 0;
  while (start < out.size()) {
    size_t nl = out.find('\n', start);
    std::string_view l = out.substr(start, nl - start);
    start = nl + 1;
    if (l.substr(0, 7) == "# HELP " || l.substr(0, 7) == "# TYPE " || (om && l == "# EOF")) {
      for (size_t k = 0; k < l.size(); ++k)
        if (l[k] == '\\' && (k + 1 >= l.size() || !std::strchr(om ? "\\n\"" : "\\n", l[++k])))
          fail("bad escape in a comment line", l);
      continue;
    }
    if (!sample_line(l)) fail(om ? "bad OpenMetrics line" : "bad Prometheus text line", l);
  }
}

// ---- JSON --------------------------------------------------------------------

class Json {
 public:
  explicit Json(std::string_view t) : t_(t) {}
  bool document() {
    if (!value(0)) return false;
    ws();
    return i_ == t_.size();
  }

 private:
  void ws() {
    while (i_ < t_.size() && std::strchr(" \t\r\n", t_[i_]) && t_[i_]) ++i_;
  }
  bool lit(std::string_view w) {
    if (t_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool value(int depth) {
    if (depth > 64) return false;
    ws();
    if (i_ >= t_.size()) return false;
    char c = t_[i_];
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i_;
      ws();
      if (i_ < t_.size() && t_[i_] == close) { ++i_; return true; }
      for (;;) {
        if (c == '{') {
          ws();
          if (!str()) return false;
          ws();
          if (!lit(":")) return false;
        }
        if (!value(depth + 1)) return false;
        ws();
        if (lit(",")) continue;
        return lit(std::string_view(&close, 1));
      }
    }
    if (c == '"') return str();
    if (lit("true") || lit("false") || lit("null")) return true;
    size_t b = i_;
    if (i_ < t_.size() && t_[i_] == '-') ++i_;
    if (i_ >= t_.size() || !(t_[i_] >= '0' && t_[i_] <= '9')) return false;
    if (t_[i_] == '0') ++i_;
    else while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') ++i_;
    if (i_ < t_.size() && t_[i_] == '.') {
      ++i_;
      if (i_ >= t_.size() || !(t_[i_] >= '0' && t_[i_] <= '9')) return false;
      while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') ++i_;
    }
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      ++i_;
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) ++i_;
      if (i_ >= t_.size() || !(t_[i_] >= '0' && t_[i_] <= '9')) return false;
      while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') ++i_;
    }
    return i_ > b;
  }
  bool str() {
    if (!lit("\"")) return false;
    while (i_ < t_.size()) {
      unsigned char c = static_cast<unsigned char>(t_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (i_ >= t_.size()) return false;
      char e = t_[i_++];
      if (e == 'u') {
        for (int k = 0; k < 4; ++k, ++i_)
          if (i_ >= t_.size() || !std::isxdigit(static_cast<unsigned char>(t_[i_]))) return false;
      } else if (!std::strchr("\"\\/bfnrt", e) || !e) {
        return false;
      }
    }
    return false;
  }
  std::string_view t_;
  size_t i_ = 0;
};

inline void check_json(std::string_view out) {
  if (!utf8(out)) fail("JSON exposition is not UTF-8", out);
  if (!Json(out).document()) fail("JSON exposition does not parse", out);
}

// Renders reg in all three formats and checks each.
inline void render_all(cm_registry* reg) {
  for (int fmt : {CM_FORMAT_PROMETHEUS, CM_FORMAT_OPENMETRICS, CM_FORMAT_JSON}) {
    char* out = nullptr;
    size_t len = 0;
    int rc = cm_registry_render(reg, fmt, &out, &len);
    check_status(rc, "cm_registry_render");
    if (rc != CM_OK) fail("cm_registry_render failed", cm_errmsg());
    if (std::strlen(out) != len) fail("rendered length differs from the NUL-terminated length", out);
    std::string_view v(out, len);
    if (fmt == CM_FORMAT_JSON) check_json(v);
    else check_text(v, fmt == CM_FORMAT_OPENMETRICS);
    cm_free(out);
  }
}

}  // namespace fuzz
