#!/usr/bin/env python3
"""Regenerates expected.json: chat-template renderings by Python's Jinja2, configured exactly as
transformers' apply_chat_template configures it (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, its {% generation %} extension, its own tojson with ensure_ascii=False, raise_exception,
strftime_now), and the context it passes (messages, tools, documents, add_generation_prompt and
the tokenizer's special tokens).

Usage: python3 tests/golden/chat_template/generate.py   (needs jinja2 >= 3.1)

It also renders features.json (small templates, one construct each: whitespace control, operators,
filters, tests, loops, scoping, string methods, errors) into features_expected.json.

Every template is rendered with every conversation, add_generation_prompt true and false, plus
the extra cases in cases.json. strftime_now renders as a marker, STRFTIME_NOW(<format>), that the
C++ test replaces with the current date formatted the same way, so the files stay deterministic.
"""
import json
import os
import random

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


class AssistantTracker(jinja2.ext.Extension):
    """transformers' {% generation %} extension, as it behaves when assistant masks are not
    requested: the body renders through a call block (so it is its own scope)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_generation_support")
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _generation_support(self, caller):
        return caller()


def make_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return "STRFTIME_NOW(" + fmt + ")"

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# Pieces random conversations are made of: the hostile strings the issue lists (CJK, emoji and other
# 4-byte UTF-8, combining marks, runs of whitespace, digits, contractions, special-token text) and
# the strings templates look for (<think>, </think>, <tool_response>).
PIECES = [
    "hello", "world", "The quick brown fox", "don't", "we'll", "I'M", "12345", "3.14", "你好",
    "世界和平", "こんにちは", "한국어", "😀", "👋🏽", "🇫🇷", "𝔘𝔫𝔦", "e\u0301", "A\u030a", "café",
    " ", "  ", "\t", "\n", "\n\n", "\r\n", "   \t\n ", "<|im_start|>", "<|im_end|>",
    "<|endoftext|>", "<s>", "</s>", "[INST]", "[/INST]", "<|eot_id|>", "<|begin_of_text|>",
    "<think>", "</think>", "<tool_response>", "</tool_response>", "{{ x }}", "{% if %}", "{#",
    "\"", "'", "\\", "\u00a0", "\u3000", "\u2028", "",
]


def random_text(rng):
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))


def random_conversations(seed, count):
    """Deterministic conversations alternating user/assistant, some with a system message and
    reasoning_content, ending with a user turn."""
    rng = random.Random(seed)
    out = {}
    for i in range(count):
        conv = []
        if rng.random() < 0.6:
            conv.append({"role": "system", "content": random_text(rng)})
        turns = rng.randint(0, 2)
        for _ in range(turns):
            conv.append({"role": "user", "content": random_text(rng)})
            msg = {"role": "assistant", "content": random_text(rng)}
            if rng.random() < 0.3:
                msg["reasoning_content"] = random_text(rng)
            conv.append(msg)
        conv.append({"role": "user", "content": random_text(rng)})
        out["random{:02d}".format(i)] = conv
    return out


def build_context(spec, case, conversation, tools):
    context = {
        "messages": conversation,
        "tools": tools if case.get("tools") else None,
        "documents": None,
        "add_generation_prompt": case["add_generation_prompt"],
    }
    if not case.get("no_special_tokens"):
        context.update(spec["tokens"])
    context.update(case.get("kwargs", {}))
    return context


def render(env, source, context):
    """The rendering, or the error Jinja2 raised (its type and message)."""
    try:
        return {"expected": env.from_string(source).render(**context)}
    except Exception as e:  # noqa: BLE001 - every Jinja2/Python error is an expected outcome.
        return {"error": str(e), "error_type": type(e).__name__}


def render_features(env):
    with open(os.path.join(HERE, "features.json"), encoding="utf-8") as f:
        features = json.load(f)
    for feature in features:
        feature.update(render(env, feature["template"], feature["context"]))
    with open(os.path.join(HERE, "features_expected.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "generate.py", "jinja2": jinja2.__version__, "cases": features},
                  f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote {} feature cases ({} expected errors)".format(
        len(features), sum(1 for e in features if "error" in e)))


def main():
    with open(os.path.join(HERE, "cases.json"), encoding="utf-8") as f:
        cases_file = json.load(f)
    env = make_environment()
    templates = cases_file["templates"]
    conversations = dict(cases_file["conversations"])
    rc = cases_file["random_conversations"]
    conversations.update(random_conversations(rc["seed"], rc["count"]))
    cases = []
    for name in templates:
        for conv in conversations:
            for agp in (True, False):
                cases.append({"template": name, "conversation": conv,
                              "add_generation_prompt": agp})
    for extra in cases_file["extra_cases"]:
        if extra["conversation"] not in conversations:
            raise SystemExit("unknown conversation " + extra["conversation"])
        for agp in (True, False):
            cases.append(dict(extra, add_generation_prompt=agp))

    out = []
    for case in cases:
        spec = templates[case["template"]]
        with open(os.path.join(HERE, spec["file"]), encoding="utf-8") as f:
            source = f.read()
        context = build_context(spec, case, conversations[case["conversation"]],
                                cases_file["tools"])
        entry = {
            "name": "{}/{}/{}{}{}".format(
                case["template"], case["conversation"],
                "gen" if case["add_generation_prompt"] else "nogen",
                "/tools" if case.get("tools") else "",
                "".join("/{}={}".format(k, json.dumps(v, ensure_ascii=False))
                        for k, v in case.get("kwargs", {}).items())
                + ("/no_special_tokens" if case.get("no_special_tokens") else "")),
            "template": spec["file"],
            "context": context,
        }
        entry.update(render(env, source, context))
        out.append(entry)

    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "generate.py", "jinja2": jinja2.__version__, "cases": out}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    errors = sum(1 for e in out if "error" in e)
    print("wrote {} cases ({} expected errors)".format(len(out), errors))
    render_features(env)


if __name__ == "__main__":
    main()
