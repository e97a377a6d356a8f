#include "request_parsing.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bounded_text.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"

namespace quantd::server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

constexpr int kMaxDepth = 16;

// The first string field (depth first) of `bytes`, read as `type`, that is not UTF-8.
absl::Status CheckUtf8(std::string_view bytes, const Descriptor* type, const std::string& path,
                       int depth) {
  UnknownFieldSet fields;
  if (depth > kMaxDepth || !fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::OkStatus();  // The typed parse reports what is wrong.
  }
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& field = fields.field(i);
    if (field.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const FieldDescriptor* descriptor = type->FindFieldByNumber(field.number());
    if (descriptor == nullptr) continue;
    const std::string name =
        path.empty() ? descriptor->name() : absl::StrCat(path, ".", descriptor->name());
    const std::string& value = field.length_delimited();
    if (descriptor->type() == FieldDescriptor::TYPE_STRING) {
      if (size_t bad = FirstInvalidUtf8(value); bad != std::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: not valid UTF-8 (byte 0x%02x at offset %d of %s); paths and texts must be UTF-8",
            name, static_cast<unsigned char>(value[bad]), bad, Quoted(value)));
      }
    } else if (descriptor->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (absl::Status s = CheckUtf8(value, descriptor->message_type(), name, depth + 1); !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseRequest(std::string_view bytes, google::protobuf::Message* message) {
  if (absl::Status s = CheckUtf8(bytes, message->GetDescriptor(), "", 0); !s.ok()) return s;
  if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request is not a valid ", message->GetDescriptor()->full_name()));
  }
  return absl::OkStatus();
}

}  // namespace quantd::server
