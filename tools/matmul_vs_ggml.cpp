// One quantised GGUF matmul: tessera kernels::matmul (every ISA level) vs ggml_mul_mat on
// the venv libggml (the llama.cpp that tools/smollm2_agreement.py uses). Prints max |diff|.
// Build: S=.venv-tools/lib/python3.11/site-packages; g++ -std=c++20 -O2 -o /tmp/q41 tools/matmul_vs_ggml.cpp \
//   -I$S/include -I. -L$S/llama_cpp/lib build/kernels/libtessera_kernels.a build/common/libtessera_common.a \
//   -lggml -lggml-base -lggml-cpu -lglog -lpthread -Wl,-rpath,$S/llama_cpp/lib
// Run:   /tmp/q41 MODEL.gguf blk.0.ffn_down.weight N_TOKENS SEED [THREADS]   (OFF=k: weights at byte offset k)
// usage: t MODEL.gguf TENSOR n seed -> max |tessera(isa) - ggml| for each ISA level
#include "ggml.h"
#include "ggml-cpu.h"
#include "gguf.h"
#include "kernels/ops.h"
#include "kernels/cpu_features.h"
#include "kernels/reference.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <vector>
using namespace tessera; using namespace tessera::kernels;
int main(int argc, char** argv){
  const char* path=argv[1]; const char* tn=argv[2]; int n=atoi(argv[3]); int seed=atoi(argv[4]);
  int nth = argc>5?atoi(argv[5]):1;
  ggml_context* wctx=nullptr;
  gguf_init_params gp={false,&wctx};
  gguf_init_from_file(path,gp);
  ggml_tensor* Wsrc=ggml_get_tensor(wctx,tn);
  int64_t K=Wsrc->ne[0], R=Wsrc->ne[1];
  ggml_init_params ip={(size_t)1<<30,nullptr,false};
  ggml_context* ctx=ggml_init(ip);
  ggml_tensor* X=ggml_new_tensor_2d(ctx,GGML_TYPE_F32,K,n);
  srand(seed); float* x=(float*)X->data;
  for(int64_t i=0;i<K*n;i++) x[i]=((rand()/(float)RAND_MAX)*2-1)*(1+ (i%7==0)*3);
  ggml_tensor* Y=ggml_mul_mat(ctx,Wsrc,X);
  ggml_cgraph* gf=ggml_new_graph(ctx); ggml_build_forward_expand(gf,Y);
  ggml_graph_compute_with_ctx(ctx,gf,nth);
  const float* yg=(float*)Y->data;
  int off=getenv("OFF")?atoi(getenv("OFF")):0; char* buf=(char*)aligned_alloc(64, ggml_nbytes(Wsrc)+128); memcpy(buf+off,Wsrc->data,ggml_nbytes(Wsrc));
  WeightMatrix w; w.dtype = Wsrc->type==GGML_TYPE_Q4_1?DType::kQ4_1: Wsrc->type==GGML_TYPE_Q8_0?DType::kQ8_0:DType::kQ4_0;
  w.rows=R; w.cols=K; w.data=buf+off;
  ThreadPool pool(nth);
  std::vector<float> y(n*R);
  ref::matmul(w,x,n,y.data());
  double m=0; for(int64_t i=0;i<n*R;i++) m=std::max(m,(double)std::fabs(y[i]-yg[i]));
  printf("%s %s K=%lld R=%lld n=%d ref: %.3g", tn, ggml_type_name(Wsrc->type),(long long)K,(long long)R,n,m);
  printf(" ptr%%64=%d", (int)((uintptr_t)Wsrc->data%64));
  for(int isa=0; isa<=(int)detected_isa(); isa++){
    ScopedIsa s((Isa)isa);
    std::fill(y.begin(),y.end(),0.f);
    matmul(pool,w,x,n,y.data());
    double m=0; int64_t at=0; for(int64_t i=0;i<n*R;i++){ double d=std::fabs(y[i]-yg[i]); if(d>m){m=d;at=i;} }
    printf("  %s: %.3g", std::string(isa_name((Isa)isa)).c_str(), m);
    if(m>1e-3) printf("[t=%lld r=%lld]", (long long)(at/R),(long long)(at%R));
  }
  printf("\n");
}
