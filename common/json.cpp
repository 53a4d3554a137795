#include "common/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace tessera {

namespace {
const char* type_name(Json::Type t) {
  switch (t) {
    case Json::Type::kNull: return "null";
    case Json::Type::kBool: return "bool";
    case Json::Type::kNumber: return "number";
    case Json::Type::kString: return "string";
    case Json::Type::kArray: return "array";
    case Json::Type::kObject: return "object";
  }
  return "?";
}
constexpr int kMaxDepth = 256;
}  // namespace

Json Json::boolean(bool b) { Json j; j.type_ = Type::kBool; j.bool_ = b; return j; }
Json Json::number(double d) { Json j; j.type_ = Type::kNumber; j.num_ = d; return j; }
Json Json::integer(int64_t i) {
  Json j; j.type_ = Type::kNumber; j.is_int_ = true; j.int_ = i; j.num_ = static_cast<double>(i); return j;
}
Json Json::string(std::string s) { Json j; j.type_ = Type::kString; j.str_ = std::move(s); return j; }
Json Json::array(Array a) { Json j; j.type_ = Type::kArray; j.arr_ = std::make_shared<Array>(std::move(a)); return j; }
Json Json::object(Object o) { Json j; j.type_ = Type::kObject; j.obj_ = std::make_shared<Object>(std::move(o)); return j; }

#define TYPE_CHECK(want)                                                                 \
  TESSERA_REQUIRE(type_ == (want), ErrorKind::kInvalidInput, "field '", field, "': expected ", \
                  type_name(want), ", got ", type_name(type_))

bool Json::as_bool(std::string_view field) const { TYPE_CHECK(Type::kBool); return bool_; }
double Json::as_double(std::string_view field) const { TYPE_CHECK(Type::kNumber); return num_; }
int64_t Json::as_int(std::string_view field) const {
  TYPE_CHECK(Type::kNumber);
  if (is_int_) return int_;
  TESSERA_REQUIRE(std::floor(num_) == num_ && std::fabs(num_) < 9.2e18, ErrorKind::kInvalidInput,
                  "field '", field, "': expected an integer, got ", num_);
  return static_cast<int64_t>(num_);
}
const std::string& Json::as_string(std::string_view field) const { TYPE_CHECK(Type::kString); return str_; }
const Json::Array& Json::as_array(std::string_view field) const { TYPE_CHECK(Type::kArray); return *arr_; }
const Json::Object& Json::as_object(std::string_view field) const { TYPE_CHECK(Type::kObject); return *obj_; }
#undef TYPE_CHECK

Json::Array& Json::mutable_array() {
  if (type_ != Type::kArray) *this = array();
  if (arr_.use_count() > 1) arr_ = std::make_shared<Array>(*arr_);
  return *arr_;
}
Json::Object& Json::mutable_object() {
  if (type_ != Type::kObject) *this = object();
  if (obj_.use_count() > 1) obj_ = std::make_shared<Object>(*obj_);
  return *obj_;
}

const Json* Json::find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (const auto& [k, v] : *obj_) if (k == key) return &v;
  return nullptr;
}

const Json& Json::at(std::string_view key) const {
  const Json* v = find(key);
  TESSERA_REQUIRE(v != nullptr, ErrorKind::kNotFound, "missing field '", key, "'");
  return *v;
}

void Json::set(std::string key, Json value) {
  Object& o = mutable_object();
  for (auto& [k, v] : o) if (k == key) { v = std::move(value); return; }
  o.emplace_back(std::move(key), std::move(value));
}

void Json::push_back(Json value) { mutable_array().push_back(std::move(value)); }

// ---------------------------------------------------------------- parser
class JsonParser {
 public:
  JsonParser(std::string_view text, std::string_view what) : s_(text), what_(what) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected trailing characters");
    return v;
  }

 private:
  std::string_view s_;
  std::string_view what_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const char* msg) {
    TESSERA_FAIL(ErrorKind::kInvalidInput, what_, ": invalid JSON at byte ", pos_, ": ", msg);
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool consume(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) { ++pos_; return true; }
    return false;
  }
  void expect_word(const char* w) {
    size_t n = std::strlen(w);
    if (s_.substr(pos_, n) != w) fail("invalid literal");
    pos_ += n;
  }

  Json parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    if (pos_ >= s_.size()) fail("unexpected end of input");
    char c = s_[pos_];
    switch (c) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': return Json::string(parse_string());
      case 't': expect_word("true"); return Json::boolean(true);
      case 'f': expect_word("false"); return Json::boolean(false);
      case 'n': expect_word("null"); return Json();
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        fail("unexpected character");
    }
  }

  Json parse_object(int depth) {
    ++pos_;
    Json obj = Json::object();
    Json::Object& members = *obj.obj_;
    skip_ws();
    if (consume('}')) return obj;
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
      std::string key = parse_string();
      skip_ws();
      if (!consume(':')) fail("expected ':'");
      skip_ws();
      members.emplace_back(std::move(key), parse_value(depth + 1));
      skip_ws();
      if (consume('}')) return obj;
      if (!consume(',')) fail("expected ',' or '}'");
    }
  }

  Json parse_array(int depth) {
    ++pos_;
    Json arr = Json::array();
    Json::Array& items = *arr.arr_;
    skip_ws();
    if (consume(']')) return arr;
    for (;;) {
      skip_ws();
      items.push_back(parse_value(depth + 1));
      skip_ws();
      if (consume(']')) return arr;
      if (!consume(',')) fail("expected ',' or ']'");
    }
  }

  Json parse_number() {
    size_t start = pos_;
    bool integral = true;
    consume('-');
    if (pos_ >= s_.size()) fail("truncated number");
    if (s_[pos_] == '0') {
      ++pos_;
    } else if (s_[pos_] >= '1' && s_[pos_] <= '9') {
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    } else {
      fail("invalid number");
    }
    if (consume('.')) {
      integral = false;
      if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9')) fail("invalid fraction");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (!consume('+')) consume('-');
      if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9')) fail("invalid exponent");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    std::string text(s_.substr(start, pos_ - start));
    if (integral && text.size() <= 18) return Json::integer(std::strtoll(text.c_str(), nullptr, 10));
    return Json::number(std::strtod(text.c_str(), nullptr));
  }

  unsigned parse_hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else fail("invalid \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') { ++pos_; return out; }
      if (c < 0x20) fail("control character in string");
      if (c != '\\') {
        // Copy a run of plain bytes at once.
        size_t start = pos_;
        while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\' &&
               static_cast<unsigned char>(s_[pos_]) >= 0x20) ++pos_;
        out.append(s_.data() + start, pos_ - start);
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) fail("truncated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = parse_hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!(consume('\\') && consume('u'))) fail("unpaired surrogate");
            unsigned lo = parse_hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("invalid low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired low surrogate");
          }
          append_utf8(out, cp);
          break;
        }
        default: fail("invalid escape");
      }
    }
  }
};

Json Json::parse(std::string_view text, std::string_view what) {
  return JsonParser(text, what).parse_document();
}

// ---------------------------------------------------------------- writer
void json_escape_to(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void Json::dump_to(std::string& out) const {
  switch (type_) {
    case Type::kNull: out += "null"; return;
    case Type::kBool: out += bool_ ? "true" : "false"; return;
    case Type::kNumber: {
      if (is_int_) { out += std::to_string(int_); return; }
      if (!std::isfinite(num_)) { out += "null"; return; }
      // Shortest text that parses back to the same double; a value that prints like
      // an integer keeps a ".0" so it stays a double (and -0.0 keeps its sign).
      char buf[40];
      const auto res = std::to_chars(buf, buf + sizeof buf, num_);
      const std::string_view text(buf, static_cast<size_t>(res.ptr - buf));
      out += text;
      if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
      return;
    }
    case Type::kString: json_escape_to(out, str_); return;
    case Type::kArray: {
      out += '[';
      bool first = true;
      for (const Json& v : *arr_) { if (!first) out += ','; first = false; v.dump_to(out); }
      out += ']';
      return;
    }
    case Type::kObject: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : *obj_) {
        if (!first) out += ',';
        first = false;
        json_escape_to(out, k);
        out += ':';
        v.dump_to(out);
      }
      out += '}';
      return;
    }
  }
}

std::string Json::dump() const { std::string out; dump_to(out); return out; }

}  // namespace tessera
