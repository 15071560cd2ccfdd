// JsonWriter: compact JSON text written in the order its caller gives, for the standard exports
// (FHIR, EPCIS): the same records give the same bytes, so a closed period exports reproducibly.
//
// The writer places commas and escapes strings (RFC 8259); any byte sequence that is not UTF-8 is
// written as U+FFFD, so the output is always valid JSON. It does not check that keys and values
// alternate: its callers build fixed shapes. One thread at a time.
#ifndef STERITRACK_SERVER_CORE_JSON_WRITER_H_
#define STERITRACK_SERVER_CORE_JSON_WRITER_H_

#ifndef STERITRACK_CORE_IMPLEMENTATION
#error "server/core/json_writer.h is internal to steritrack_core"
#endif

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace steritrack::core_internal {

class JsonWriter {
 public:
  // Appends to `out`. REQUIRES: `out` outlives the writer.
  explicit JsonWriter(std::string* out) : out_(out) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The key of the next value in the current object.
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Bool(bool value);

  // Key and value in one.
  JsonWriter& Field(std::string_view key, std::string_view value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, const char* value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, int64_t value) { return Key(key).Int(value); }
  // "key": { ... opens an object value.
  JsonWriter& Object(std::string_view key) { return Key(key).BeginObject(); }
  JsonWriter& Array(std::string_view key) { return Key(key).BeginArray(); }

  // Appends `text` to `out` as a JSON string body (no quotes).
  static void AppendEscaped(std::string_view text, std::string* out);

 private:
  void BeforeValue();

  std::string* const out_;
  // Per open object or array: whether a value was written in it yet.
  std::vector<bool> has_value_;
  bool after_key_ = false;
};

}  // namespace steritrack::core_internal

#endif  // STERITRACK_SERVER_CORE_JSON_WRITER_H_
