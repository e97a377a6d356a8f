// What the pipeline overlaps with the backend's work: the export queue (order, bound, first
// failure), the layer prefetcher (same weights as a direct read, in order), the embedding rows read
// straight from the checkpoint (same hidden states as the whole matrix), and the streamed copy of
// a source tensor into the output (same bytes as writing its float32 values).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include "backend/backend.h"
#include "export/checkpoint_writer.h"
#include "io/checkpoint_reader.h"
#include "io/source_values.h"
#include "io/staged_files.h"
#include "model/architecture.h"
#include "pipeline/export_queue.h"
#include "pipeline/layer_prefetcher.h"
#include "pipeline/source_tensors.h"
#include "testing/io_random_model.h"
#include "testing/io_temp_dir.h"

namespace quantd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A model of the test geometry (hidden 64, 2 layers, vocab 96) in bf16.
SourceModel RandomSource(const testing::IoTempDir& dir, bool tied) {
  testing::RandomModelOptions o;
  o.config = testing::TinyConfig("Qwen2ForCausalLM", tied);
  o.output_dir = dir.Sub("model");
  o.dtype = DType::kBF16;
  o.seed = 11;
  EXPECT_TRUE(testing::WriteRandomModel(o).ok());
  absl::StatusOr<SourceModel> m = OpenSourceModel(o.output_dir, 32, {});
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

std::string FileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(ExportQueueTest, RunsTasksInSubmissionOrderAndDrainWaitsForAll) {
  ExportQueue queue(2);
  std::vector<int> order;  // touched by the queue's thread only until Drain()
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(queue
                    .Submit([&order, i] {
                      std::this_thread::sleep_for(std::chrono::microseconds(200));
                      order.push_back(i);
                      return absl::OkStatus();
                    })
                    .ok());
  }
  ASSERT_TRUE(queue.Drain().ok());
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
  EXPECT_GT(queue.busy_seconds(), 0.0);
}

TEST(ExportQueueTest, SubmitWaitsWhileTheQueueIsFull) {
  ExportQueue queue(1);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  auto blocked = [&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
    return absl::OkStatus();
  };
  ASSERT_TRUE(queue.Submit(blocked).ok());  // runs and blocks
  // The first task may not have been picked up yet; once it runs, one more fits in the queue.
  ASSERT_TRUE(queue.Submit([] { return absl::OkStatus(); }).ok());
  std::atomic<bool> third_returned{false};
  std::thread third([&] {
    EXPECT_TRUE(queue.Submit([] { return absl::OkStatus(); }).ok());
    third_returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(third_returned.load()) << "Submit() returned while the queue was full";
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  third.join();
  EXPECT_TRUE(third_returned.load());
  EXPECT_TRUE(queue.Drain().ok());
}

TEST(ExportQueueTest, TheFirstFailureIsReturnedAndLaterTasksAreSkipped) {
  ExportQueue queue(4);
  std::atomic<int> ran{0};
  ASSERT_TRUE(queue
                  .Submit([&] {
                    ++ran;
                    return absl::InternalError("disk full while writing layer 3");
                  })
                  .ok());
  // Queued before the failure is seen (then skipped) or refused with it: it never runs.
  (void)queue.Submit([&] {
    ++ran;
    return absl::OkStatus();
  });
  const absl::Status drained = queue.Drain();
  EXPECT_THAT(std::string(drained.message()), HasSubstr("disk full while writing layer 3"));
  EXPECT_EQ(ran.load(), 1);
  const absl::Status later = queue.Submit([&] {
    ++ran;
    return absl::OkStatus();
  });
  EXPECT_EQ(later.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(queue.Drain().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ran.load(), 1);
}

TEST(ExportQueueTest, DestroyingTheQueueDropsTasksNotStarted) {
  std::atomic<int> ran{0};
  {
    ExportQueue queue(8);
    ASSERT_TRUE(queue
                    .Submit([&] {
                      std::this_thread::sleep_for(std::chrono::milliseconds(100));
                      ++ran;
                      return absl::OkStatus();
                    })
                    .ok());
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(queue
                      .Submit([&] {
                        ++ran;
                        return absl::OkStatus();
                      })
                      .ok());
    }
  }
  EXPECT_LE(ran.load(), 1);  // at most the first one had started
}

TEST(LayerPrefetcherTest, ReturnsEveryLayerInOrderAsADirectReadDoes) {
  testing::IoTempDir dir;
  SourceModel m = RandomSource(dir, /*tied=*/true);
  LayerPrefetcher layers(m.weights.get(), &m.config);
  for (int i = 0; i < m.config.num_hidden_layers; ++i) {
    absl::StatusOr<LayerWeights> pre = layers.Next();
    ASSERT_TRUE(pre.ok()) << pre.status();
    absl::StatusOr<LayerWeights> direct = m.weights->LoadLayer(m.config, i);
    ASSERT_TRUE(direct.ok());
    EXPECT_EQ(pre->q_proj.weight.data, direct->q_proj.weight.data) << "layer " << i;
    EXPECT_EQ(pre->down_proj.weight.data, direct->down_proj.weight.data) << "layer " << i;
    ASSERT_EQ(pre->q_proj.bias.has_value(), direct->q_proj.bias.has_value());
    if (direct->q_proj.bias) {
      EXPECT_EQ(pre->q_proj.bias->data, direct->q_proj.bias->data);
    }
    EXPECT_EQ(pre->post_attention_layernorm.data, direct->post_attention_layernorm.data);
  }
  EXPECT_EQ(layers.Next().status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_GT(layers.read_seconds(), 0.0);
}

TEST(LayerPrefetcherTest, OneLayerInFlightReadsTheNextOnceTheCurrentIsReleased) {
  testing::IoTempDir dir;
  SourceModel m = RandomSource(dir, /*tied=*/true);
  ASSERT_GE(m.config.num_hidden_layers, 2);
  std::atomic<int> reads{0};
  LayerPrefetcher layers(
      m.weights.get(), &m.config,
      [&reads](LayerWeights* w) {
        ++reads;
        return MaterializeLayer(w);
      },
      /*layers_in_flight=*/1);
  absl::StatusOr<LayerWeights> first = layers.Next();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_NE(first->host_lease, nullptr);
  // Layer 0 is held: layer 1 is not read, however long it waits.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(reads.load(), 1);
  const std::vector<int64_t> q_shape = first->q_proj.weight.shape;
  ReleaseLinearWeights(&*first);  // what the CUDA backend does once the layer is uploaded
  EXPECT_TRUE(first->q_proj.weight.data.empty());
  EXPECT_EQ(first->q_proj.weight.shape, q_shape);  // the geometry stays checkable
  EXPECT_EQ(first->host_lease, nullptr);
  for (int i = 0; i < 100 && reads.load() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(reads.load(), 2);  // read while layer 0 is still worked on (its object lives)
  absl::StatusOr<LayerWeights> second = layers.Next();
  ASSERT_TRUE(second.ok()) << second.status();
  absl::StatusOr<LayerWeights> direct = m.weights->LoadLayer(m.config, 1);
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(second->q_proj.weight.data, direct->q_proj.weight.data);
  EXPECT_EQ(second->down_proj.weight.data, direct->down_proj.weight.data);
  // A caller that still holds a layer when it asks for the next one is not left waiting.
  absl::StatusOr<LayerWeights> third = layers.Next();
  EXPECT_TRUE(third.ok() || third.status().code() == absl::StatusCode::kOutOfRange);
}

TEST(LayerPrefetcherTest, APrefetcherDestroyedWhileItsNextReadWaitsDoesNotHang) {
  testing::IoTempDir dir;
  SourceModel m = RandomSource(dir, /*tied=*/true);
  std::atomic<int> reads{0};
  absl::StatusOr<LayerWeights> held;
  {
    LayerPrefetcher layers(
        m.weights.get(), &m.config,
        [&reads](LayerWeights* w) {
          ++reads;
          return MaterializeLayer(w);
        },
        /*layers_in_flight=*/1);
    held = layers.Next();
    ASSERT_TRUE(held.ok());
  }  // layer 0 still held: the waiting read is dropped, not made
  EXPECT_EQ(reads.load(), 1);
  held->host_lease.reset();  // releasing after the prefetcher is gone is harmless
}

TEST(SourceTensorsTest, EmbeddingRowsGiveTheSameHiddenStatesAsTheWholeMatrix) {
  testing::IoTempDir dir;
  SourceModel m = RandomSource(dir, /*tied=*/true);
  const std::vector<std::vector<int32_t>> calib = {{5, 7, 5, 95}, {0, 7, 40, 41}};
  const std::vector<std::vector<int32_t>> eval = {{41, 3}};
  absl::StatusOr<EmbeddingRows> rows = ReadEmbeddingRows(*m.weights, {&calib, &eval});
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->rows.dim(0), 7);  // distinct ids: 5 7 95 0 40 41 3
  absl::StatusOr<Tensor> full = m.weights->LoadEmbedding();
  ASSERT_TRUE(full.ok());
  const int64_t hidden = full->dim(1);
  const std::vector<const std::vector<std::vector<int32_t>>*> sets = {&calib, &eval};
  for (size_t s = 0; s < sets.size(); ++s) {
    ASSERT_EQ(rows->block_sets[s].size(), sets[s]->size());
    for (size_t b = 0; b < sets[s]->size(); ++b) {
      std::vector<float> want(sets[s]->at(b).size() * static_cast<size_t>(hidden));
      std::vector<float> got(want.size());
      ASSERT_TRUE(GatherEmbeddingRows(*full, sets[s]->at(b), want.data()).ok());
      ASSERT_TRUE(GatherEmbeddingRows(rows->rows, rows->block_sets[s][b], got.data()).ok());
      EXPECT_EQ(got, want) << "set " << s << " block " << b;
    }
  }
  EXPECT_THAT(rows->block_sets[0][0], ElementsAre(0, 1, 0, 2));
}

TEST(SourceTensorsTest, AnIdOutsideTheVocabularyIsNamed) {
  testing::IoTempDir dir;
  SourceModel m = RandomSource(dir, /*tied=*/true);
  const std::vector<std::vector<int32_t>> calib = {{1, 96}};
  absl::StatusOr<EmbeddingRows> rows = ReadEmbeddingRows(*m.weights, {&calib});
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rows.status().message()), HasSubstr("token id 96"));
}

TEST(SourceTensorsTest, StreamedCopyWritesTheSameBytesAsTheFloatValues) {
  testing::IoTempDir dir;
  SourceModel m = RandomSource(dir, /*tied=*/false);
  absl::StatusOr<Tensor> lm_head = m.weights->LoadLmHead(m.config);
  ASSERT_TRUE(lm_head.ok());
  const std::vector<PlannedTensor> plan = {
      {kLmHeadName, DType::kF16, {m.config.vocab_size, m.config.hidden_size}}};
  std::string paths[2];
  for (int streamed = 0; streamed < 2; ++streamed) {
    const std::string out = dir.Sub(streamed ? "streamed" : "float");
    std::filesystem::create_directories(out);
    StagedFiles staged(out);
    absl::StatusOr<std::unique_ptr<CheckpointWriter>> w =
        CheckpointWriter::Create(&staged, plan, {});
    ASSERT_TRUE(w.ok()) << w.status();
    if (streamed) {
      const SafetensorsFile* file = nullptr;
      const SafetensorsEntry* e = m.weights->Find(kLmHeadName, &file);
      ASSERT_NE(e, nullptr);
      ASSERT_EQ(e->dtype, DType::kBF16);
      // In two parts, as the pipeline streams it.
      const absl::Span<const uint8_t> bytes = file->Bytes(*e);
      const size_t half = bytes.size() / 2;
      ASSERT_TRUE((*w)->WriteFloatFrom(kLmHeadName, 0, e->dtype, bytes.subspan(0, half)).ok());
      ASSERT_TRUE((*w)->WriteFloatFrom(kLmHeadName, static_cast<int64_t>(half / 2), e->dtype,
                                       bytes.subspan(half))
                      .ok());
    } else {
      ASSERT_TRUE((*w)->WriteFloat(kLmHeadName, *lm_head).ok());
    }
    ASSERT_TRUE((*w)->Finish().ok());
    ASSERT_TRUE(staged.Commit().ok());
    paths[streamed] = staged.FinalPath("model.safetensors");
  }
  const std::string a = FileBytes(paths[0]), b = FileBytes(paths[1]);
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "streamed copy differs from the float32 write";
}

TEST(SourceTensorsTest, StreamedCopyRejectsAWrongElementCount) {
  testing::IoTempDir dir;
  const std::string out = dir.Sub("out");
  std::filesystem::create_directories(out);
  StagedFiles staged(out);
  absl::StatusOr<std::unique_ptr<CheckpointWriter>> w =
      CheckpointWriter::Create(&staged, {{"x", DType::kF16, {4, 4}}}, {});
  ASSERT_TRUE(w.ok());
  const std::vector<uint8_t> bytes(15 * 2);
  const absl::Status s = (*w)->WriteFloatFrom("x", 2, DType::kBF16, bytes);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("do not fit its 16 elements"));
}

}  // namespace
}  // namespace quantd::engine
