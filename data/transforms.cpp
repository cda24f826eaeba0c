// The transforms work on raw f32 buffers with plain loops: they run on the loader's prefetch thread
// for one small example at a time, where the library's parallel ops would only add overhead.
#include "data/transforms.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/ops/factory.h"
#include "data/keys.h"

namespace plateau::data {

namespace {

// The example as a contiguous f32 [C, H, W] tensor, or an error naming the transform.
Tensor image(const Tensor& x, const char* transform) {
  if (!x.defined() || x.dim() != 3 || x.dtype() != DType::f32)
    throw std::invalid_argument(std::string("plateau: ") + transform + " needs an f32 image of shape [C, H, W], got " +
                                (x.defined() ? x.shape().str() + " " + dtype_name(x.dtype()) : "an undefined tensor"));
  if (x.size(1) < 1 || x.size(2) < 1)
    throw std::invalid_argument(std::string("plateau: ") + transform + " needs H, W >= 1, got shape " +
                                x.shape().str());
  return x.contiguous();
}

}  // namespace

Transform normalize(std::vector<double> mean, std::vector<double> std) {
  if (mean.empty() || mean.size() != std.size())
    throw std::invalid_argument("plateau: normalize needs one mean and one std per channel, got " +
                                std::to_string(mean.size()) + " means and " + std::to_string(std.size()) + " stds");
  for (size_t c = 0; c < std.size(); ++c)
    if (!(std[c] > 0))
      throw std::invalid_argument("plateau: normalize needs std > 0, got " + std::to_string(std[c]) + " for channel " +
                                  std::to_string(c));
  return [mean = std::move(mean), std = std::move(std)](const Tensor& x, Generator&) {
    if (!x.defined() || x.dim() < 1 || x.dtype() != DType::f32 || x.size(0) != static_cast<int64_t>(mean.size()))
      throw std::invalid_argument("plateau: normalize was given " + std::to_string(mean.size()) +
                                  " channels but the example is " +
                                  (x.defined() ? x.shape().str() + " " + dtype_name(x.dtype()) : "undefined") +
                                  " (needs f32 with the channels in dimension 0)");
    Tensor in = x.contiguous(), out = empty(x.shape(), DType::f32);
    const float* src = in.data<float>();
    float* dst = out.data<float>();
    int64_t plane = x.numel() / x.size(0);
    for (size_t c = 0; c < mean.size(); ++c) {
      float m = static_cast<float>(mean[c]), inv = static_cast<float>(1.0 / std[c]);
      for (int64_t i = 0; i < plane; ++i) dst[c * plane + i] = (src[c * plane + i] - m) * inv;
    }
    return out;
  };
}

Transform random_crop(int64_t padding) {
  if (padding < 0)
    throw std::invalid_argument("plateau: random_crop needs padding >= 0, got " + std::to_string(padding));
  return [padding](const Tensor& x, Generator& gen) {
    Tensor in = image(x, "random_crop");
    int64_t channels = in.size(0), h = in.size(1), w = in.size(2);
    int64_t dy = draw_below(gen, 2 * padding + 1) - padding, dx = draw_below(gen, 2 * padding + 1) - padding;
    // out[y][x] = padded[y + dy + padding][x + dx + padding] = in[y + dy][x + dx], zero outside.
    Tensor out = zeros(in.shape(), DType::f32);
    const float* src = in.data<float>();
    float* dst = out.data<float>();
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t y = std::max<int64_t>(0, -dy); y < std::min(h, h - dy); ++y)
        for (int64_t col = std::max<int64_t>(0, -dx); col < std::min(w, w - dx); ++col)
          dst[(c * h + y) * w + col] = src[(c * h + y + dy) * w + col + dx];
    return out;
  };
}

Transform horizontal_flip(double p) {
  if (!(p >= 0 && p <= 1))
    throw std::invalid_argument("plateau: horizontal_flip needs p in [0, 1], got " + std::to_string(p));
  return [p](const Tensor& x, Generator& gen) {
    Tensor in = image(x, "horizontal_flip");
    if (!(draw_uniform(gen) < p)) return in;
    int64_t rows = in.size(0) * in.size(1), w = in.size(2);
    Tensor out = empty(in.shape(), DType::f32);
    const float* src = in.data<float>();
    float* dst = out.data<float>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t col = 0; col < w; ++col) dst[r * w + col] = src[r * w + (w - 1 - col)];
    return out;
  };
}

Transform cutout(int64_t size) {
  if (size < 0) throw std::invalid_argument("plateau: cutout needs size >= 0, got " + std::to_string(size));
  return [size](const Tensor& x, Generator& gen) {
    Tensor in = image(x, "cutout");
    int64_t channels = in.size(0), h = in.size(1), w = in.size(2);
    int64_t cy = draw_below(gen, h), cx = draw_below(gen, w);
    int64_t y0 = std::clamp<int64_t>(cy - size / 2, 0, h), y1 = std::clamp<int64_t>(cy + size / 2, 0, h);
    int64_t x0 = std::clamp<int64_t>(cx - size / 2, 0, w), x1 = std::clamp<int64_t>(cx + size / 2, 0, w);
    Tensor out = empty(in.shape(), DType::f32);
    float* dst = out.data<float>();
    std::memcpy(dst, in.data<float>(), static_cast<size_t>(in.numel()) * sizeof(float));
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t col = x0; col < x1; ++col) dst[(c * h + y) * w + col] = 0.0f;
    return out;
  };
}

Transform compose(std::vector<Transform> transforms) {
  return [transforms = std::move(transforms)](const Tensor& x, Generator& gen) {
    Tensor y = x;
    for (const auto& t : transforms) y = t(y, gen);
    return y;
  };
}

}  // namespace plateau::data
