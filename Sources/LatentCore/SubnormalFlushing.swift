#if canImport(Glibc)
import Glibc
#endif

/// Subnormal floats flushed to zero while the engine's parallel regions run (x86-64: the FTZ and DAZ bits of MXCSR).
/// Intel cores take a microcode assist of about a hundred cycles for a subnormal operand or result, and IWAE's
/// importance weights push gradients into that range (docs/PERFORMANCE.md § Subnormal flushing). Only magnitudes
/// below 1.2e-38 (Float) or 2.2e-308 (Double) change, to zero, as in TensorFlow's CPU kernels.
@usableFromInline package enum SubnormalFlushing {
    #if arch(x86_64) && canImport(Glibc)
    /// MXCSR's flush-to-zero (results) and denormals-are-zero (operands) bits.
    static let bits: UInt32 = 0x8040
    #endif

    /// Whether subnormals are flushed on the calling thread now.
    @usableFromInline package static var isEnabled: Bool {
        #if arch(x86_64) && canImport(Glibc)
        var environment = fenv_t()
        fegetenv(&environment)
        return environment.__mxcsr & bits == bits
        #else
        return false
        #endif
    }

    /// Flushes subnormals on the calling thread from now on (the worker pool's own threads).
    @usableFromInline package static func enable() {
        #if arch(x86_64) && canImport(Glibc)
        var environment = fenv_t()
        fegetenv(&environment)
        environment.__mxcsr |= bits
        fesetenv(&environment)
        #endif
    }

    /// Runs `body` with subnormals flushed on the calling thread and restores the thread's mode afterwards (the
    /// thread that starts a parallel region runs part 0 of it).
    @inlinable
    package static func during<R>(_ body: () throws -> R) rethrows -> R {
        #if arch(x86_64) && canImport(Glibc)
        var saved = fenv_t()
        fegetenv(&saved)
        enable()
        defer { fesetenv(&saved) }
        #endif
        return try body()
    }
}
