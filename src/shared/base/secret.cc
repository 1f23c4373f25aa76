#include "shared/base/secret.h"

#include <string.h>

#include <cstdlib>
#include <cstring>
#include <utility>

namespace chiron {

void SecureZero(void* data, size_t size) {
  if (data != nullptr && size != 0) explicit_bzero(data, size);
}

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size_ != 0) {
    data_ = static_cast<uint8_t*>(std::calloc(size_, 1));
    if (data_ == nullptr) std::abort();
  }
}

SecretBytes::SecretBytes(ByteSpan data) : SecretBytes(data.size()) {
  if (!data.empty()) std::memcpy(data_, data.data(), data.size());
}

SecretBytes::~SecretBytes() { Release(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void SecretBytes::Release() {
  SecureZero(data_, size_);
  std::free(data_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace chiron
