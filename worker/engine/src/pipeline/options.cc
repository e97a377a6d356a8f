// Defaults and names of the public engine API (include/quantd/engine/quantize.h).
#include "quantd/engine/quantize.h"

namespace quantd::engine {

// The seed script's AWQ_CALIB_SYSTEM_PROMPT, byte for byte (246 characters, 630 UTF-8 bytes).
const char kSeedSystemPrompt[] =
    "你是评测答题模型。目标：ROUGE-L高分且尽量少输出token。\n"
    "只输出答案正文，切中要点，列出个别关键术语或结论，不要任何“思考过程/推理/分析/步骤/解释/"
    "客套”，不要出现“思考完成”等字样。\n"
    "\n"
    "写法要求：\n"
    "1) 尽量复用教材/标准表述，少改写，保持常见措辞与词序。\n"
    "2) 用3-6个短句/短语覆盖关键点（定义/参数/公式/步骤/关键术语），不要长段落。\n"
    "3) 不举例、不扩展背景、不重复。\n"
    "4) 若题目要求代码：只输出最短可用的核心代码/伪代码骨架，不加Markdown围栏，不解释。";

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kLoading:
      return "loading";
    case Phase::kCalibrating:
      return "calibrating";
    case Phase::kQuantizing:
      return "quantizing";
    case Phase::kEvaluating:
      return "evaluating";
    case Phase::kExporting:
      return "exporting";
  }
  return "unknown";
}

}  // namespace quantd::engine
