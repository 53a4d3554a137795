// A small JSON DOM: parse (strict RFC 8259, with a depth limit and byte offsets in
// errors) and serialise. Used for safetensors headers, config.json, tokenizer.json,
// encoder.json, and later the HTTP API.
//
// Objects keep their members in document order (a vector of pairs): checkpoint
// headers and vocabularies are iterated far more often than looked up by key.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tessera {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;  // null
  static Json boolean(bool b);
  static Json number(double d);
  static Json integer(int64_t i);
  static Json string(std::string s);
  static Json array(Array a = {});
  static Json object(Object o = {});

  // Throws tessera::Error(kInvalidInput) naming `what` (a file name, "request body")
  // and the byte offset of the first problem.
  static Json parse(std::string_view text, std::string_view what = "json");

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_integer() const { return type_ == Type::kNumber && is_int_; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Typed accessors throw tessera::Error naming `field` when the type is wrong.
  bool as_bool(std::string_view field = "value") const;
  double as_double(std::string_view field = "value") const;
  int64_t as_int(std::string_view field = "value") const;
  const std::string& as_string(std::string_view field = "value") const;
  const Array& as_array(std::string_view field = "value") const;
  const Object& as_object(std::string_view field = "value") const;
  Array& mutable_array();
  Object& mutable_object();

  // Object lookup: nullptr when absent (or when this is not an object).
  const Json* find(std::string_view key) const;
  // Object lookup that throws naming the key when absent.
  const Json& at(std::string_view key) const;
  // Appends (objects: replaces an existing key).
  void set(std::string key, Json value);
  void push_back(Json value);

  std::string dump() const;

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  bool is_int_ = false;
  double num_ = 0;
  int64_t int_ = 0;
  std::string str_;
  std::shared_ptr<Array> arr_;   // shared_ptr keeps Json copyable and cheap to move
  std::shared_ptr<Object> obj_;

  void dump_to(std::string& out) const;
  friend class JsonParser;
};

// Appends `s` as a JSON string literal (with quotes) to out.
void json_escape_to(std::string& out, std::string_view s);

}  // namespace tessera
