// compare_logits A.f32 B.f32 TOLERANCE: exits 0 when two float32 files have the same
// length and max |a - b| <= TOLERANCE * max(1, max |a|); prints the difference.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

static std::vector<float> read(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / 4);
  std::copy(bytes.begin(), bytes.begin() + v.size() * 4, reinterpret_cast<char*>(v.data()));
  return v;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: compare_logits A.f32 B.f32 TOLERANCE\n");
    return 2;
  }
  const std::vector<float> a = read(argv[1]), b = read(argv[2]);
  if (a.empty() || a.size() != b.size()) {
    std::fprintf(stderr, "size mismatch: %zu vs %zu floats\n", a.size(), b.size());
    return 1;
  }
  double diff = 0, mag = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::fmax(diff, std::fabs(double(a[i]) - b[i]));
    mag = std::fmax(mag, std::fabs(double(a[i])));
  }
  const double tol = std::atof(argv[3]) * mag;
  std::printf("max |a - b| = %.3g (tolerance %.3g)\n", diff, tol);
  return diff <= tol ? 0 : 1;
}
