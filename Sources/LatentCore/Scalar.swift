#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether a matrix operand is used as stored or transposed (row-major storage throughout the engine).
public enum Transpose: Sendable {
    /// The operand as stored: op(A) = A.
    case none
    /// The operand transposed: op(A) = Aᵀ, read from the same row-major storage without a copy.
    case transpose
}

/// Which triangle of a square matrix an operation reads.
public enum Triangle: Sendable {
    /// The lower triangle, diagonal included: the engine's Cholesky factors L are lower-triangular.
    case lower
    /// The upper triangle, diagonal included.
    case upper
}

/// Side of a triangular solve: `op(L) X = αB` (left) or `X op(L) = αB` (right).
public enum Side: Sendable {
    /// Solve `op(L) X = αB`: the triangular matrix multiplies the unknown from the left.
    case left
    /// Solve `X op(L) = αB`: the triangular matrix multiplies the unknown from the right.
    case right
}

/// A floating-point scalar with BLAS/LAPACK bindings and elementary functions: `Float` (training) and `Double` (checks).
///
/// All matrices are row-major. The bindings live in `BLAS.swift` and `LAPACK.swift`, the only files that call C.
public protocol BLASScalar: BinaryFloatingPoint, Sendable, CustomStringConvertible, VectorMath, SIMDScalar
where RawSignificand: FixedWidthInteger {
    /// C = α op(A) op(B) + β C, with op(A) rows×inner and op(B) inner×columns.
    static func gemm(
        _ transA: Transpose, _ transB: Transpose, rows: Int, columns: Int, inner: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// Solves op(T) X = α B (side left) or X op(T) = α B (side right) in place of B, T triangular.
    static func trsm(
        side: Side, triangle: Triangle, transpose: Transpose, unitDiagonal: Bool, rows: Int, columns: Int,
        alpha: Self, triangular: UnsafePointer<Self>, ldt: Int, b: UnsafeMutablePointer<Self>, ldb: Int)
    /// Solves op(T) x = b in place of b.
    static func trsv(
        triangle: Triangle, transpose: Transpose, order: Int,
        triangular: UnsafePointer<Self>, ldt: Int, x: UnsafeMutablePointer<Self>, increment: Int)
    /// Cholesky factorization in place (`potrf`); returns LAPACK's `info`.
    static func potrfInfo(triangle: Triangle, order: Int, a: UnsafeMutablePointer<Self>, lda: Int) -> Int

    /// eˣ, the C library's `exp` at this precision.
    static func exp(_ x: Self) -> Self
    /// The natural logarithm, the C library's `log` at this precision.
    static func log(_ x: Self) -> Self
    /// log(1 + x), accurate for small x (the C library's `log1p`).
    static func log1p(_ x: Self) -> Self
    /// eˣ − 1, accurate for small x (the C library's `expm1`).
    static func expm1(_ x: Self) -> Self
    /// The cosine of x in radians (the C library's `cos`).
    static func cos(_ x: Self) -> Self
    /// The sine of x in radians (the C library's `sin`).
    static func sin(_ x: Self) -> Self
    /// Bytes of one value in checkpoints.
    static var byteWidth: Int { get }
}

/// Namespace for the C math library's functions, so the scalar's static members can forward to them.
@usableFromInline enum C {
    @usableFromInline static func exp(_ x: Float) -> Float { expf(x) }
    @usableFromInline static func log(_ x: Float) -> Float { logf(x) }
    @usableFromInline static func log1p(_ x: Float) -> Float { log1pf(x) }
    @usableFromInline static func expm1(_ x: Float) -> Float { expm1f(x) }
    @usableFromInline static func cos(_ x: Float) -> Float { cosf(x) }
    @usableFromInline static func sin(_ x: Float) -> Float { sinf(x) }
    @usableFromInline static func exp(_ x: Double) -> Double { MathDouble.exp(x) }
    @usableFromInline static func log(_ x: Double) -> Double { MathDouble.log(x) }
    @usableFromInline static func log1p(_ x: Double) -> Double { MathDouble.log1p(x) }
    @usableFromInline static func expm1(_ x: Double) -> Double { MathDouble.expm1(x) }
    @usableFromInline static func cos(_ x: Double) -> Double { MathDouble.cos(x) }
    @usableFromInline static func sin(_ x: Double) -> Double { MathDouble.sin(x) }
}

/// `Float`, the training scalar: a ``BLASScalar`` with SIMD vector math (``VectorMath``) and the C library's
/// single-precision elementary functions.
extension Float {
    /// eˣ: the C library's `expf`.
    @inlinable public static func exp(_ x: Float) -> Float { C.exp(x) }
    /// The natural logarithm: the C library's `logf`.
    @inlinable public static func log(_ x: Float) -> Float { C.log(x) }
    /// log(1 + x), accurate for small x: the C library's `log1pf`.
    @inlinable public static func log1p(_ x: Float) -> Float { C.log1p(x) }
    /// eˣ − 1, accurate for small x: the C library's `expm1f`.
    @inlinable public static func expm1(_ x: Float) -> Float { C.expm1(x) }
    /// The cosine of x in radians: the C library's `cosf`.
    @inlinable public static func cos(_ x: Float) -> Float { C.cos(x) }
    /// The sine of x in radians: the C library's `sinf`.
    @inlinable public static func sin(_ x: Float) -> Float { C.sin(x) }
    @inlinable public static var byteWidth: Int { 4 }
}

/// `Double`, the scalar of gradient checks and reference computations: a ``BLASScalar`` with the C library's
/// double-precision elementary functions.
extension Double {
    /// eˣ: the C library's `exp`.
    @inlinable public static func exp(_ x: Double) -> Double { C.exp(x) }
    /// The natural logarithm: the C library's `log`.
    @inlinable public static func log(_ x: Double) -> Double { C.log(x) }
    /// log(1 + x), accurate for small x: the C library's `log1p`.
    @inlinable public static func log1p(_ x: Double) -> Double { C.log1p(x) }
    /// eˣ − 1, accurate for small x: the C library's `expm1`.
    @inlinable public static func expm1(_ x: Double) -> Double { C.expm1(x) }
    /// The cosine of x in radians: the C library's `cos`.
    @inlinable public static func cos(_ x: Double) -> Double { C.cos(x) }
    /// The sine of x in radians: the C library's `sin`.
    @inlinable public static func sin(_ x: Double) -> Double { C.sin(x) }
    @inlinable public static var byteWidth: Int { 8 }
}
