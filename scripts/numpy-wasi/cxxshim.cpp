// The few pieces of the C++ runtime numpy's C++ code links against, position-independent
// (Debian's libc++.a for wasm32 is not, so it cannot go into a shared module). Built
// without exceptions: anything that would throw aborts.
#include <cstdlib>
#include <cstdio>
#include <cstdarg>
#include <new>
#include <exception>
#include <functional>
#include <typeinfo>

namespace std {
exception::~exception() noexcept {}
const char *exception::what() const noexcept { return "std::exception"; }
bad_alloc::bad_alloc() noexcept {}
bad_alloc::~bad_alloc() noexcept {}
const char *bad_alloc::what() const noexcept { return "std::bad_alloc"; }
bad_array_new_length::bad_array_new_length() noexcept {}
bad_array_new_length::~bad_array_new_length() noexcept {}
const char *bad_array_new_length::what() const noexcept { return "bad_array_new_length"; }
type_info::~type_info() {}
}  // namespace std
_LIBCPP_BEGIN_NAMESPACE_STD
size_t __next_prime(size_t n) {
    if (n <= 2) return 2;
    for (n |= 1;; n += 2) {
        bool prime = true;
        for (size_t d = 3; d * d <= n; d += 2)
            if (n % d == 0) { prime = false; break; }
        if (prime) return n;
    }
}
void __libcpp_verbose_abort(const char *format, ...) {
    va_list list;
    va_start(list, format);
    vfprintf(stderr, format, list);
    va_end(list);
    abort();
}
_LIBCPP_END_NAMESPACE_STD

std::bad_function_call::~bad_function_call() noexcept {}
const char *std::bad_function_call::what() const noexcept { return "std::bad_function_call"; }

namespace __cxxabiv1 {
struct __class_type_info : std::type_info { ~__class_type_info() override; };
__class_type_info::~__class_type_info() {}
struct __si_class_type_info : __class_type_info { ~__si_class_type_info() override; };
__si_class_type_info::~__si_class_type_info() {}
}  // namespace __cxxabiv1

void *operator new(size_t size) {
    void *p = std::malloc(size ? size : 1);
    if (!p) std::abort();
    return p;
}
void *operator new[](size_t size) { return operator new(size); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, size_t) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete[](void *p, size_t) noexcept { std::free(p); }

extern "C" void *__cxa_allocate_exception(size_t) { std::abort(); }
extern "C" void __cxa_throw(void *, void *, void (*)(void *)) { std::abort(); }
