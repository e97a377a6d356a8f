// quantd-random-model --config config.json --output_dir DIR [--dtype float16|bfloat16|float32]
//                     [--seed N] [--outlier_channels K] [--outlier_scale S] [--max_shard_bytes B]
//                     [--layers K] [--fused_experts true|false] [--threads N]
// --layers K writes only the first K decoder layers (num_hidden_layers = K in its config.json), for
// disks that cannot hold a whole MoE checkpoint; --fused_experts writes a MoE model's experts as
// transformers 5's fused 3-D tensors; --threads generates slices in parallel.
//
// Writes DIR/config.json and a safetensors checkpoint of the config's geometry with random
// weights; K channels of every RMSNorm are multiplied by S (default 20) so activations have the
// outlier channels AWQ is designed for. Streams one slice at a time: a 7B geometry needs little
// memory (but ~15 GB of disk in float16).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/json_file.h"
#include "io_random_model.h"

namespace {

int Usage(const char* message) {
  std::fprintf(stderr,
               "error: %s\nusage: quantd-random-model --config config.json --output_dir DIR "
               "[--dtype float16|bfloat16|float32] [--seed N] [--outlier_channels K] "
               "[--outlier_scale S] [--max_shard_bytes B] [--layers K] "
               "[--fused_experts true|false] [--threads N]\n",
               message);
  return 2;
}

bool ParseInt(const std::string& text, long long* out) {
  char* end = nullptr;
  *out = std::strtoll(text.c_str(), &end, 10);
  return !text.empty() && end != nullptr && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  quantd::engine::testing::RandomModelOptions options;
  std::string config_path;
  int layers = 0;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    if (size_t eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Usage(("missing value for " + flag).c_str());
    }
    long long n = 0;
    if (flag == "--config") {
      config_path = value;
    } else if (flag == "--output_dir") {
      options.output_dir = value;
    } else if (flag == "--dtype") {
      if (value == "float16") {
        options.dtype = quantd::engine::DType::kF16;
      } else if (value == "bfloat16") {
        options.dtype = quantd::engine::DType::kBF16;
      } else if (value == "float32") {
        options.dtype = quantd::engine::DType::kF32;
      } else {
        return Usage("--dtype must be float16, bfloat16 or float32");
      }
    } else if (flag == "--seed" && ParseInt(value, &n) && n >= 0) {
      options.seed = static_cast<uint64_t>(n);
    } else if (flag == "--outlier_channels" && ParseInt(value, &n) && n >= 0) {
      options.outlier_channels = static_cast<int>(n);
    } else if (flag == "--outlier_scale") {
      options.outlier_scale = std::strtof(value.c_str(), nullptr);
    } else if (flag == "--max_shard_bytes" && ParseInt(value, &n) && n > 0) {
      options.max_shard_bytes = n;
    } else if (flag == "--layers" && ParseInt(value, &n) && n > 0) {
      layers = static_cast<int>(n);
    } else if (flag == "--fused_experts" && (value == "true" || value == "false")) {
      options.fused_experts = value == "true";
    } else if (flag == "--threads" && ParseInt(value, &n) && n > 0) {
      options.threads = static_cast<int>(n);
    } else {
      return Usage(("bad flag or value: " + flag + " " + value).c_str());
    }
  }
  if (config_path.empty() || options.output_dir.empty()) {
    return Usage("--config and --output_dir are required");
  }
  auto config = quantd::engine::ReadJsonFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  options.config = *config;
  if (layers > 0) options.config["num_hidden_layers"] = layers;
  absl::Status status = quantd::engine::testing::WriteRandomModel(options);
  if (!status.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::printf("wrote %s\n", options.output_dir.c_str());
  return 0;
}
