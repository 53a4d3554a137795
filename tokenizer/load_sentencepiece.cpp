// SentencePiece tokenizer.model (sentencepiece_model.proto, ModelProto).
// Field numbers used:
//   ModelProto:      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
//   SentencePiece:   1 piece (string), 2 score (float), 3 type (enum)
//   TrainerSpec:     3 model_type (1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR), 35 byte_fallback,
//                    40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id
//   NormalizerSpec:  1 name, 3 add_dummy_prefix, 4 remove_extra_whitespaces
#include <cstring>

#include "common/error.h"
#include "common/mapped_file.h"
#include "tokenizer/loaders.h"
#include "tokenizer/protobuf_reader.h"

namespace tessera {
namespace {

int32_t as_int32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

}  // namespace

Vocab load_sentencepiece_model(const std::string& path) {
  MappedFile file(path);
  Vocab v;
  v.source = path;
  v.model = TokenizerModel::kSpm;
  // proto2 defaults.
  int model_type = 1;
  bool byte_fallback = false;
  int32_t unk = 0, bos = 1, eos = 2, pad = -1;
  bool add_dummy_prefix = true;
  bool remove_extra_ws = true;
  std::string norm_name;

  ProtoReader top(path, file.data(), 0, file.size(), "ModelProto");
  uint32_t field;
  ProtoReader::WireType wt;
  auto expect = [&](const ProtoReader& r, ProtoReader::WireType want, const char* name) {
    TESSERA_REQUIRE(wt == want, ErrorKind::kInvalidInput, path, ": field ", name, " at offset ",
                    r.pos(), " has wire type ", static_cast<int>(wt), ", expected ",
                    static_cast<int>(want));
  };
  while (!top.done()) {
    top.next_field(&field, &wt);
    if (field == 1) {
      expect(top, ProtoReader::kLengthDelimited, "pieces");
      ProtoReader pr = top.sub("pieces[" + std::to_string(v.tokens.size()) + "]");
      std::string piece;
      float score = 0;
      int type = 1;
      while (!pr.done()) {
        pr.next_field(&field, &wt);
        if (field == 1) {
          expect(pr, ProtoReader::kLengthDelimited, "piece");
          piece = pr.string();
        } else if (field == 2) {
          expect(pr, ProtoReader::kFixed32, "score");
          const uint32_t bits = pr.fixed32();
          std::memcpy(&score, &bits, 4);
        } else if (field == 3) {
          expect(pr, ProtoReader::kVarint, "type");
          type = static_cast<int>(pr.varint());
        } else {
          pr.skip(wt);
        }
      }
      TESSERA_REQUIRE(type >= 1 && type <= 6, ErrorKind::kInvalidInput, path, ": piece ",
                      v.tokens.size(), " has unknown type ", type);
      v.tokens.push_back(std::move(piece));
      v.scores.push_back(score);
      v.types.push_back(static_cast<TokenType>(type));
    } else if (field == 2) {
      expect(top, ProtoReader::kLengthDelimited, "trainer_spec");
      ProtoReader tr = top.sub("trainer_spec");
      while (!tr.done()) {
        tr.next_field(&field, &wt);
        const bool varint_field = field == 3 || field == 35 || (field >= 40 && field <= 43);
        if (!varint_field) {
          tr.skip(wt);
          continue;
        }
        expect(tr, ProtoReader::kVarint, "trainer_spec field");
        const uint64_t x = tr.varint();
        switch (field) {
          case 3: model_type = static_cast<int>(x); break;
          case 35: byte_fallback = x != 0; break;
          case 40: unk = as_int32(x); break;
          case 41: bos = as_int32(x); break;
          case 42: eos = as_int32(x); break;
          case 43: pad = as_int32(x); break;
        }
      }
    } else if (field == 3) {
      expect(top, ProtoReader::kLengthDelimited, "normalizer_spec");
      ProtoReader nr = top.sub("normalizer_spec");
      while (!nr.done()) {
        nr.next_field(&field, &wt);
        if (field == 1) {
          expect(nr, ProtoReader::kLengthDelimited, "normalizer_spec.name");
          norm_name = nr.string();
        } else if (field == 3 || field == 4) {
          expect(nr, ProtoReader::kVarint, "normalizer_spec flag");
          (field == 3 ? add_dummy_prefix : remove_extra_ws) = nr.varint() != 0;
        } else {
          nr.skip(wt);
        }
      }
    } else {
      top.skip(wt);
    }
  }
  TESSERA_REQUIRE(!v.tokens.empty(), ErrorKind::kInvalidInput, path, ": no pieces in ModelProto");
  TESSERA_REQUIRE(model_type == 2, ErrorKind::kUnsupported, path, ": trainer_spec.model_type ",
                  model_type, " (only BPE = 2 is supported; 1 is UNIGRAM)");
  // Llama-style models use the identity normalizer; NFKC-style normalizers are not
  // implemented (documented in docs/TOKENIZERS.md) and are tolerated as identity.
  const int32_t n = v.size();
  auto id_or_none = [&](int32_t id) { return id >= 0 && id < n ? id : -1; };
  v.unk_id = id_or_none(unk);
  v.bos_id = id_or_none(bos);
  v.eos_id = id_or_none(eos);
  v.pad_id = id_or_none(pad);
  v.byte_fallback = byte_fallback;
  v.add_dummy_prefix = add_dummy_prefix;
  v.add_bos = v.bos_id >= 0;
  (void)remove_extra_ws;  // Llama sets it off; collapsing whitespace is not implemented
  return v;
}

}  // namespace tessera
