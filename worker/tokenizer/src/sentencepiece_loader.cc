// Loads a SentencePiece tokenizer.model (BPE type) into the pipeline transformers' LlamaConverter
// builds from it, so that ids equal those of HF's LlamaTokenizerFast for the same file.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "loaders.h"
#include "path_guard/confined_io.h"
#include "sentencepiece_model.h"
#include "utf8.h"

namespace quantd::tokenizer {
namespace {

constexpr char kMetaspace[] = "\xE2\x96\x81";  // U+2581

// HF's merges for a SentencePiece BPE vocabulary: every split of a piece into two pieces, ordered
// by (left id, right id) within a piece, then stably by the piece's score, highest first.
std::vector<std::pair<std::string, std::string>> MergesFromScores(
    const SentencePieceModel& m, const absl::flat_hash_map<std::string, int32_t>& vocab) {
  struct Merge {
    int32_t left, right;
    float score;
  };
  std::vector<Merge> merges;
  for (const SentencePieceModel::Piece& p : m.pieces) {
    const size_t first = merges.size();
    const std::string& s = p.piece;
    size_t cut = 0;
    if (!s.empty()) NextCodePoint(s, cut);  // splits fall on code point boundaries
    while (cut < s.size()) {
      const auto left = vocab.find(s.substr(0, cut));
      const auto right = vocab.find(s.substr(cut));
      if (left != vocab.end() && right != vocab.end()) {
        merges.push_back({left->second, right->second, p.score});
      }
      NextCodePoint(s, cut);
    }
    std::sort(merges.begin() + first, merges.end(), [](const Merge& a, const Merge& b) {
      return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score > b.score; });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const Merge& mg : merges)
    out.emplace_back(m.pieces[mg.left].piece, m.pieces[mg.right].piece);
  return out;
}

}  // namespace

absl::StatusOr<Pipeline> LoadSentencePieceModel(const std::string& dir) {
  const std::string path = dir + "/tokenizer.model";
  std::unique_ptr<std::istream> in = path_guard::OpenInputStream(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open file: ", path_guard::ErrorText(errno)));
  }
  std::stringstream buffer;
  buffer << in->rdbuf();
  absl::StatusOr<SentencePieceModel> m = ParseSentencePieceModel(buffer.str(), path);
  if (!m.ok()) return m.status();
  if (m->model_type != SentencePieceModel::ModelType::kBpe) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": SentencePiece model type ", static_cast<int>(m->model_type),
                     " is not supported (only BPE, type 2, as Llama and Mistral use)"));
  }
  if (m->has_precompiled_charsmap) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": SentencePiece normalizer \"", m->normalizer_name,
                     "\" with a precompiled charsmap is not supported (only identity)"));
  }
  absl::StatusOr<Json> config = ReadTokenizerConfig(dir);
  if (!config.ok()) return config.status();
  const bool legacy = ConfigBool(*config, "legacy", true);
  const bool add_prefix_space = ConfigBool(*config, "add_prefix_space", m->add_dummy_prefix);
  const bool add_bos = ConfigBool(*config, "add_bos_token", true);
  const bool add_eos = ConfigBool(*config, "add_eos_token", false);

  Pipeline p;
  absl::flat_hash_map<std::string, int32_t> vocab;
  for (size_t i = 0; i < m->pieces.size(); ++i) {
    const SentencePieceModel::Piece& piece = m->pieces[i];
    if (!vocab.emplace(piece.piece, static_cast<int32_t>(i)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": piece \"", piece.piece, "\" appears twice (id ", i, ")"));
    }
    using Type = SentencePieceModel::PieceType;
    if (piece.type == Type::kControl || piece.type == Type::kUnknown ||
        piece.type == Type::kUserDefined) {
      const bool special = piece.type != Type::kUserDefined;
      p.added.Add({.content = piece.piece, .id = static_cast<int32_t>(i), .special = special});
    }
  }
  const std::vector<std::pair<std::string, std::string>> merges = MergesFromScores(*m, vocab);
  BpeOptions options;
  if (m->unk_id >= 0) options.unk_token = m->pieces[m->unk_id].piece;
  options.fuse_unk = true;
  options.byte_fallback = true;
  absl::StatusOr<std::unique_ptr<BpeModel>> model =
      BpeModel::Create(std::move(vocab), merges, std::move(options), path);
  if (!model.ok()) return model.status();
  p.model = std::move(*model);

  if (legacy) {
    Json steps = Json::array();
    if (add_prefix_space) steps.push_back({{"type", "Prepend"}, {"prepend", kMetaspace}});
    steps.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMetaspace}});
    absl::StatusOr<std::unique_ptr<Normalizer>> normalizer =
        NormalizerFromJson({{"type", "Sequence"}, {"normalizers", steps}}, path);
    if (!normalizer.ok()) return normalizer.status();
    p.normalizer = std::move(*normalizer);
  } else {
    absl::StatusOr<std::unique_ptr<PreTokenizer>> pre =
        PreTokenizerFromJson({{"type", "Metaspace"},
                              {"replacement", kMetaspace},
                              {"prepend_scheme", add_prefix_space ? "first" : "never"},
                              {"split", false}},
                             path);
    if (!pre.ok()) return pre.status();
    p.pre_tokenizer = std::move(*pre);
  }
  Json decoders =
      Json::array({{{"type", "Replace"}, {"pattern", {{"String", kMetaspace}}}, {"content", " "}},
                   {{"type", "ByteFallback"}},
                   {{"type", "Fuse"}}});
  if (add_prefix_space)
    decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  absl::StatusOr<std::unique_ptr<Decoder>> decoder =
      DecoderFromJson({{"type", "Sequence"}, {"decoders", decoders}}, path);
  if (!decoder.ok()) return decoder.status();
  p.decoder = std::move(*decoder);

  if (add_bos && m->bos_id >= 0) p.post_processor.prefix.push_back(m->bos_id);
  if (add_eos && m->eos_id >= 0) p.post_processor.suffix.push_back(m->eos_id);
  p.bos_token = ConfigTokenString(*config, "bos_token");
  p.eos_token = ConfigTokenString(*config, "eos_token");
  if (!p.bos_token && m->bos_id >= 0) p.bos_token = m->pieces[m->bos_id].piece;
  if (!p.eos_token && m->eos_id >= 0) p.eos_token = m->pieces[m->eos_id].piece;
  return p;
}

}  // namespace quantd::tokenizer
