// Character classes as Rust's char methods define them (the reference's pre-tokenizers use them).
#ifndef QUANTD_TOKENIZER_UNICODE_CLASS_H_
#define QUANTD_TOKENIZER_UNICODE_CLASS_H_

namespace quantd::tokenizer {

// char::is_whitespace: the Unicode White_Space property.
bool IsWhiteSpace(char32_t c);
// char::is_numeric: general categories Nd, Nl, No.
bool IsNumeric(char32_t c);
// char::is_alphanumeric: Alphabetic or numeric.
bool IsAlphanumeric(char32_t c);
// HF's is_punctuation: ASCII punctuation or a Unicode P* category.
bool IsPunctuation(char32_t c);

}  // namespace quantd::tokenizer

#endif  // QUANTD_TOKENIZER_UNICODE_CLASS_H_
