#include "make_calib_command.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"

namespace quantd::quantize_awq {
namespace {

constexpr char kUsage[] =
    "usage: quantize-awq make-calib TEXT_FILE > calib.jsonl\n"
    "  Writes a calibration file for --calib_jsonl: one JSON line {\"text\": ...} per paragraph "
    "of\n"
    "  TEXT_FILE (paragraphs are separated by blank lines; a paragraph's lines are joined with "
    "one\n"
    "  space). quantize-awq then samples --num_calib rows of it and drops texts longer than\n"
    "  --max_seq_len tokens.\n";

}  // namespace

int64_t WriteCalibrationRows(std::istream& in, std::FILE* out) {
  int64_t rows = 0;
  std::string paragraph;
  const auto flush = [&] {
    if (paragraph.empty()) return;
    const std::string row = nlohmann::json{{"text", paragraph}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fprintf(out, "%s\n", row.c_str());
    ++rows;
    paragraph.clear();
  };
  for (std::string line; std::getline(in, line);) {
    const absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty()) {
      flush();
      continue;
    }
    if (!paragraph.empty()) paragraph += ' ';
    paragraph.append(text.data(), text.size());
  }
  flush();
  return rows;
}

int RunMakeCalib(const std::vector<std::string>& args, std::FILE* out, std::FILE* err) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(kUsage, out);
    return 0;
  }
  if (args.size() != 1 || args[0].rfind("--", 0) == 0) {
    std::fprintf(err, "quantize-awq make-calib: expected one TEXT_FILE\n\n%s", kUsage);
    return 2;
  }
  std::ifstream in(args[0], std::ios::binary);
  if (!in) {
    std::fprintf(err, "quantize-awq make-calib: cannot read %s\n", args[0].c_str());
    return 1;
  }
  const int64_t rows = WriteCalibrationRows(in, out);
  if (in.bad()) {
    std::fprintf(err, "quantize-awq make-calib: read error in %s\n", args[0].c_str());
    return 1;
  }
  if (rows == 0) {
    std::fprintf(err, "quantize-awq make-calib: %s holds no text\n", args[0].c_str());
    return 1;
  }
  std::fprintf(err, "quantize-awq make-calib: %lld rows (paragraphs) from %s\n",
               static_cast<long long>(rows), args[0].c_str());
  return 0;
}

}  // namespace quantd::quantize_awq
