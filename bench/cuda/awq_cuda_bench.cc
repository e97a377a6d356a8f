// AWQ of a random model on the CUDA (or CPU) backend: writes a random checkpoint of the given
// config.json geometry with planted outlier channels, then times the engine from opening the
// checkpoint to the last packed layer (export not included), per phase, and prints a table.
//
//   quantd-awq-cuda-bench --config qwen2.5-0.5b-instruct.config.json --blocks 128 --len 512
//                         [--layers N] [--dir /tmp/m] [--backend cuda|cpu] [--quality_blocks K]
//
// --quality_blocks K: then the layers run a second time with the quality report's work — K
// held-out blocks forwarded through the float and the quantized layer (Backend::SetHeldOut), each
// scaling group's round-to-nearest / AWQ comparison — and the final norm, lm_head and the two
// next-token NLLs; a second table gives what that work adds, per steady layer and in all.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "awq_flops.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "io/checkpoint_reader.h"
#include "io/status_macros.h"
#include "io_random_model.h"
#include "model/model_config.h"
#include "nlohmann/json.hpp"

namespace quantd::engine {
namespace {

struct Args {
  std::string config, dir = "/tmp/quantd-bench-model", backend = "cuda";
  int blocks = 128, len = 512, layers = 0, quality_blocks = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double HostPeakRssGiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / (1024.0 * 1024.0);
  }
  return 0.0;
}

int Main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--config")
      a.config = v;
    else if (k == "--dir")
      a.dir = v;
    else if (k == "--backend")
      a.backend = v;
    else if (k == "--blocks")
      a.blocks = std::atoi(v.c_str());
    else if (k == "--len")
      a.len = std::atoi(v.c_str());
    else if (k == "--layers")
      a.layers = std::atoi(v.c_str());
    else if (k == "--quality_blocks")
      a.quality_blocks = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "unknown argument %s\n", k.c_str());
      return 2;
    }
  }
  if (a.config.empty()) {
    std::fprintf(stderr, "--config FILE (a config.json) is required\n");
    return 2;
  }
  std::ifstream in(a.config);
  nlohmann::json cj = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (cj.is_discarded()) {
    std::fprintf(stderr, "%s: not valid JSON\n", a.config.c_str());
    return 2;
  }
  if (a.layers > 0) cj["num_hidden_layers"] = a.layers;
  absl::StatusOr<ModelConfig> parsed = ParseModelConfig(cj, a.config);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  const double t_gen = Now();
  testing::RandomModelOptions opt{cj, a.dir, parsed->dtype, 1234, 4, 20.0f};
  opt.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (absl::Status s = testing::WriteRandomModel(opt); !s.ok()) {
    std::fprintf(stderr, "random model: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "random model written in %.1f s\n", Now() - t_gen);

  const double t0 = Now();
  absl::StatusOr<SourceModel> model = OpenSourceModel(a.dir, 128, {});
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  const ModelConfig& c = model->config;
  std::unique_ptr<Backend> backend;
  if (a.backend == "cpu") {
    backend = CreateCpuBackend();
  } else {
    absl::StatusOr<std::unique_ptr<Backend>> b = CreateCudaBackend();
    if (!b.ok()) {
      std::fprintf(stderr, "%s\n", std::string(b.status().message()).c_str());
      return 1;
    }
    backend = std::move(*b);
  }
  const double t_init = Now();
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> id(0, c.vocab_size - 1);
  std::vector<std::vector<int32_t>> blocks(static_cast<size_t>(a.blocks));
  for (auto& b : blocks) {
    for (int t = 0; t < a.len; ++t) b.push_back(id(rng));
  }
  absl::StatusOr<Tensor> emb = model->weights->LoadEmbedding();
  if (!emb.ok()) return 1;
  absl::StatusOr<std::unique_ptr<Activations>> hidden = backend->Embed(*emb, blocks);
  if (!hidden.ok()) {
    std::fprintf(stderr, "%s\n", std::string(hidden.status().message()).c_str());
    return 1;
  }
  const double t_embed = Now();
  LayerQuantSettings settings;
  settings.md = c.dtype;
  double load = 0.0, quant = 0.0;
  CudaPhaseSeconds before = CudaPhaseTotals();
  double alloc_before = CudaAllocationSeconds();
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const double s0 = Now();
    absl::StatusOr<LayerWeights> w = model->weights->LoadLayer(c, l);
    if (!w.ok()) return 1;
    const double s1 = Now();
    absl::StatusOr<QuantizedLayer> q =
        backend->QuantizeLayer(c, settings, *std::move(w), hidden->get(), nullptr);
    if (!q.ok()) {
      std::fprintf(stderr, "layer %d: %s\n", l, std::string(q.status().message()).c_str());
      return 1;
    }
    const double s2 = Now();
    load += s1 - s0;
    quant += s2 - s1;
    const CudaPhaseSeconds after = CudaPhaseTotals();
    const double alloc_after = CudaAllocationSeconds();
    std::fprintf(
        stderr,
        "layer %d: load %.3f s, quantize %.3f s (upload %.3f, forward+stats %.3f / device "
        "%.3f, search %.3f / %.3f, finish %.3f / %.3f; device allocations %.3f); ratios",
        l, s1 - s0, s2 - s1, after.upload - before.upload, after.forward - before.forward,
        after.device_forward - before.device_forward, after.scale_search - before.scale_search,
        after.device_scale_search - before.device_scale_search, after.finish - before.finish,
        after.device_finish - before.device_finish, alloc_after - alloc_before);
    before = after;
    alloc_before = alloc_after;
    for (const ScalingDecision& d : q->scaling) std::fprintf(stderr, " %d", d.ratio_index);
    std::fprintf(stderr, "\n");
  }
  const double total = Now() - t0;
  const double tokens = static_cast<double>(a.blocks) * a.len;
  const double flops = bench::AwqLayerFlops(c, tokens, a.len) * c.num_hidden_layers;
  const CudaPhaseSeconds ph = CudaPhaseTotals();
  const double gib = 1024.0 * 1024.0 * 1024.0;
  std::printf(
      "\n| geometry | backend | blocks x len | layers | total s | open+init s | embed s | "
      "load s | upload s | forward+stats s | scale search s | fold+clip+pack s | "
      "TFLOP | TFLOP/s | %% of 790 | peak GPU GiB | host RSS GiB |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::printf(
      "| %s h%d i%d | %s | %dx%d | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | "
      "%.2f | %.1f | %.1f | %.1f | %.2f | %.2f |\n",
      c.architecture_name.c_str(), c.hidden_size, c.intermediate_size,
      std::string(backend->name()).c_str(), a.blocks, a.len, c.num_hidden_layers, total,
      t_init - t0, t_embed - t_init, load, ph.upload, ph.forward, ph.scale_search, ph.finish,
      flops / 1e12, flops / 1e12 / quant, 100.0 * flops / 1e12 / quant / 790.0,
      static_cast<double>(CudaPeakDeviceBytes()) / gib, HostPeakRssGiB());
  if (a.quality_blocks <= 0) return 0;

  // The same layers again, with and then without the quality report's work, on the same
  // calibration blocks (the first pass above warmed everything up).
  std::vector<std::vector<int32_t>> held(static_cast<size_t>(a.quality_blocks));
  for (auto& b : held) {
    for (int t = 0; t < a.len; ++t) b.push_back(id(rng));
  }
  // Per steady layer of the quality pass: the quality work's device seconds (held-out forwards,
  // group comparisons), and for each group how far the chosen scales' loss on the quality slice
  // (awq_loss) is from the search's loss of the same scales on all tokens.
  std::vector<double> held_out_s, compare_s, slice_gaps;
  auto pass = [&](bool quality, std::vector<double>* seconds,
                  double* eval_seconds) -> absl::Status {
    QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<Activations> h, backend->Embed(*emb, blocks));
    std::unique_ptr<Activations> hf, hq;
    if (quality) {
      QUANTD_ASSIGN_OR_RETURN(hf, backend->Embed(*emb, held));
      QUANTD_ASSIGN_OR_RETURN(hq, backend->Embed(*emb, held));
      backend->SetHeldOut({hf.get(), hq.get(), DType::kF16});
    } else {
      backend->SetHeldOut({});
    }
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      QUANTD_ASSIGN_OR_RETURN(LayerWeights w, model->weights->LoadLayer(c, l));
      const CudaPhaseSeconds p0 = CudaPhaseTotals();
      const double s0 = Now();
      QUANTD_ASSIGN_OR_RETURN(QuantizedLayer q,
                              backend->QuantizeLayer(c, settings, std::move(w), h.get(), nullptr));
      seconds->push_back(Now() - s0);
      const CudaPhaseSeconds p1 = CudaPhaseTotals();
      std::fprintf(stderr,
                   "%s layer %d: %.4f s (upload %.4f, device forward %.4f, search %.4f, finish "
                   "%.4f; of which held-out forwards %.4f, group comparisons %.4f)",
                   quality ? "quality" : "plain", l, seconds->back(), p1.upload - p0.upload,
                   p1.device_forward - p0.device_forward,
                   p1.device_scale_search - p0.device_scale_search,
                   p1.device_finish - p0.device_finish, p1.device_held_out - p0.device_held_out,
                   p1.device_compare - p0.device_compare);
      for (const ScalingDecision& d : q.scaling) {
        if (!quality) break;
        std::fprintf(stderr, "; %s rtn %.4g awq %.4g (all tokens %.4g)", d.label.c_str(),
                     d.rtn_loss, d.awq_loss, d.loss);
        if (l > 0) slice_gaps.push_back(d.awq_loss / d.loss - 1.0);
      }
      std::fprintf(stderr, "\n");
      if (quality && l > 0) {
        held_out_s.push_back(p1.device_held_out - p0.device_held_out);
        compare_s.push_back(p1.device_compare - p0.device_compare);
      }
    }
    if (quality) {
      const double e0 = Now();
      QUANTD_ASSIGN_OR_RETURN(Tensor norm, model->weights->LoadFinalNorm());
      QUANTD_ASSIGN_OR_RETURN(Tensor head, model->weights->LoadLmHead(c));
      const double e1 = Now();
      std::vector<std::vector<int32_t>> targets = held;  // any in-vocabulary ids
      QUANTD_RETURN_IF_ERROR(backend->NextTokenNll(c, c.dtype, norm, head, *hf, targets).status());
      const double e2 = Now();
      QUANTD_RETURN_IF_ERROR(
          backend->NextTokenNll(c, DType::kF16, norm, head, *hq, targets).status());
      *eval_seconds = Now() - e1;
      std::fprintf(stderr,
                   "quality: lm_head read %.3f s (the pipeline reads it beside the layers); NLL "
                   "float %.3f s (with lm_head's upload), quantized %.3f s\n",
                   e1 - e0, e2 - e1, Now() - e2);
      backend->SetHeldOut({});
    }
    return absl::OkStatus();
  };
  std::vector<double> with, without;
  double eval = 0.0;
  if (absl::Status s = pass(true, &with, &eval); !s.ok()) {
    std::fprintf(stderr, "quality pass: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  double unused = 0.0;
  if (absl::Status s = pass(false, &without, &unused); !s.ok()) {
    std::fprintf(stderr, "plain pass: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  const double med_with = Median(with), med_without = Median(without);
  double sum_with = 0.0, sum_without = 0.0;
  for (double v : with) sum_with += v;
  for (double v : without) sum_without += v;
  double worst_gap = 0.0;
  for (double g : slice_gaps) worst_gap = std::max(worst_gap, std::fabs(g));
  std::printf(
      "\n| geometry | blocks x len | held-out blocks | layers | layer s (median), plain | layer s "
      "(median), with quality | extra per layer | held-out forwards s (device, median) | "
      "comparisons s (device, median) | NLL x2 s | all layers plain s | extra s in all | extra %% "
      "| AWQ loss, slice vs all tokens (max) |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::printf(
      "| %s h%d i%d | %dx%d | %d | %d | %.4f | %.4f | %.2f %% | %.4f | %.4f | %.3f | %.2f | %.3f | "
      "%.2f %% | %.2f %% |\n",
      c.architecture_name.c_str(), c.hidden_size, c.intermediate_size, a.blocks, a.len,
      a.quality_blocks, c.num_hidden_layers, med_without, med_with,
      100.0 * (med_with / med_without - 1.0), Median(held_out_s), Median(compare_s), eval,
      sum_without, sum_with - sum_without + eval,
      100.0 * (sum_with - sum_without + eval) / sum_without, 100.0 * worst_gap);
  return 0;
}

}  // namespace
}  // namespace quantd::engine

int main(int argc, char** argv) { return quantd::engine::Main(argc, argv); }
