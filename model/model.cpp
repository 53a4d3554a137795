#include "model/model.h"

#include "common/error.h"

namespace tessera {

void DecoderModel::copy_state(int32_t src, int32_t dst) {
  TESSERA_FAIL(ErrorKind::kUnsupported, config().architecture, ": the model keeps no per-sequence state to copy (slot ",
               src, " -> ", dst, ")");
}

}  // namespace tessera
