#include "sentencepiece_model.h"

#include <cstring>
#include <functional>

#include "absl/strings/str_cat.h"

namespace quantd::tokenizer {
namespace {

// One protobuf message's fields, read in order.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  struct Field {
    uint32_t number;
    uint32_t wire_type;
    uint64_t varint;         // wire type 0, and 1/5 as raw bits
    std::string_view bytes;  // wire type 2
  };

  // Calls on_field for each field; false when the bytes are not a well-formed message.
  bool ForEach(const std::function<bool(const Field&)>& on_field) {
    while (pos_ < data_.size()) {
      uint64_t key;
      if (!Varint(key)) return false;
      Field f{static_cast<uint32_t>(key >> 3), static_cast<uint32_t>(key & 7), 0, {}};
      if (f.number == 0) return false;
      switch (f.wire_type) {
        case 0:
          if (!Varint(f.varint)) return false;
          break;
        case 1:
        case 5: {
          const size_t n = f.wire_type == 1 ? 8 : 4;
          if (data_.size() - pos_ < n) return false;
          std::memcpy(&f.varint, data_.data() + pos_, n);  // little-endian hosts only
          pos_ += n;
          break;
        }
        case 2: {
          uint64_t n;
          if (!Varint(n) || n > data_.size() - pos_) return false;
          f.bytes = data_.substr(pos_, n);
          pos_ += n;
          break;
        }
        default:
          return false;
      }
      if (!on_field(f)) return false;
    }
    return true;
  }

 private:
  bool Varint(uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return false;
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      out |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  std::string_view data_;
  size_t pos_ = 0;
};

float FloatBits(uint64_t raw) {
  const auto bits = static_cast<uint32_t>(raw);
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

}  // namespace

absl::StatusOr<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes,
                                                           const std::string& path) {
  SentencePieceModel m;
  std::string error;
  const auto bad = [&](std::string what) {
    error = std::move(what);
    return false;
  };
  const bool ok = WireReader(bytes).ForEach([&](const WireReader::Field& f) {
    if (f.number == 1 && f.wire_type == 2) {  // pieces
      SentencePieceModel::Piece piece;
      const bool piece_ok = WireReader(f.bytes).ForEach([&](const WireReader::Field& p) {
        if (p.number == 1 && p.wire_type == 2) piece.piece = std::string(p.bytes);
        if (p.number == 2 && p.wire_type == 5) piece.score = FloatBits(p.varint);
        if (p.number == 3 && p.wire_type == 0) {
          if (p.varint < 1 || p.varint > 6) return bad(absl::StrCat("piece type ", p.varint));
          piece.type = static_cast<SentencePieceModel::PieceType>(p.varint);
        }
        return true;
      });
      if (!piece_ok)
        return error.empty() ? bad(absl::StrCat("piece ", m.pieces.size(), " is malformed"))
                             : false;
      m.pieces.push_back(std::move(piece));
    } else if (f.number == 2 && f.wire_type == 2) {  // trainer_spec
      return WireReader(f.bytes).ForEach([&](const WireReader::Field& t) {
        if (t.wire_type != 0) return true;
        const auto i32 = static_cast<int32_t>(static_cast<uint32_t>(t.varint));
        if (t.number == 3) m.model_type = static_cast<SentencePieceModel::ModelType>(t.varint);
        if (t.number == 35) m.byte_fallback = t.varint != 0;
        if (t.number == 40) m.unk_id = i32;
        if (t.number == 41) m.bos_id = i32;
        if (t.number == 42) m.eos_id = i32;
        if (t.number == 43) m.pad_id = i32;
        return true;
      }) || bad("trainer_spec is malformed");
    } else if (f.number == 3 && f.wire_type == 2) {  // normalizer_spec
      return WireReader(f.bytes).ForEach([&](const WireReader::Field& n) {
        if (n.number == 1 && n.wire_type == 2) m.normalizer_name = std::string(n.bytes);
        if (n.number == 2 && n.wire_type == 2) m.has_precompiled_charsmap = !n.bytes.empty();
        if (n.number == 3 && n.wire_type == 0) m.add_dummy_prefix = n.varint != 0;
        if (n.number == 4 && n.wire_type == 0) m.remove_extra_whitespaces = n.varint != 0;
        if (n.number == 5 && n.wire_type == 0) m.escape_whitespaces = n.varint != 0;
        return true;
      }) || bad("normalizer_spec is malformed");
    }
    return true;
  });
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a SentencePiece model (", error.empty() ? "malformed protobuf" : error, ")"));
  }
  if (m.pieces.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": SentencePiece model has no pieces"));
  }
  const auto n = static_cast<int32_t>(m.pieces.size());
  for (const auto& [name, id] : {std::pair{"unk_id", m.unk_id}, std::pair{"bos_id", m.bos_id},
                                 std::pair{"eos_id", m.eos_id}}) {
    if (id >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": trainer_spec.", name, " ", id, " is not a piece (", n, " pieces)"));
    }
  }
  return m;
}

}  // namespace quantd::tokenizer
