/* C++ without exceptions (no wasm exception handling here): a `throw` traps, a `try` block
 * just runs, and a `catch` clause is never entered (its variable binds to nothing). */
#ifdef __cplusplus
#ifndef __cpp_exceptions
struct __sg_no_exception { template <class T> operator T &() const { __builtin_trap(); } };
#define try if (true)
#define catch(X) else if (false) for (X = __sg_no_exception(); false;)
#define throw __builtin_trap(), (void)
#endif
#endif
