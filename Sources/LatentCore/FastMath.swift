#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Branch-free polynomial exp and log for Float that LLVM vectorizes (Cephes' minimax coefficients, ~2 ulp);
/// `Double` forwards to the C library so that gradient checks stay exact.
///
/// The training step's transcendental work (ELU, softplus, sigmoid) goes through these: libm's scalar calls
/// cannot be vectorized and otherwise take a fifth of a step.
public protocol VectorMath: SIMDScalar & Codable & Hashable {
    /// eˣ, with inputs clamped to the finite range of the type.
    static func fastExp(_ x: Self) -> Self
    /// log x for 0 < x < ∞.
    static func fastLog(_ x: Self) -> Self
    /// eˣ − 1 (ELU's negative branch); exact `expm1` for Double.
    static func fastExpMinusOne(_ x: Self) -> Self
    /// log(1 + x) for x ≥ 0 (softplus); exact `log1p` for Double.
    static func fastLogOnePlus(_ x: Self) -> Self
    /// log(1 + e) for e ∈ [0, 1] given r = 1/(2 + e), which the caller has at hand (softplus of a logit a, with
    /// e = exp(−|a|)): no range reduction and no division; exact `log1p` for Double.
    static func fastLogOnePlusUnit(_ e: Self, reciprocalOfTwoPlus r: Self) -> Self
    /// √v lane-wise for v ≥ 0 (Adam). The standard library scalarizes `SIMD8.squareRoot()` into eight libm calls;
    /// Float uses the SSE square-root instruction on x86-64 (correctly rounded) and elsewhere the reciprocal-square-root
    /// bit trick with three Newton steps (≤ 2.1e-7 relative error, √0 = 0).
    static func fastSquareRoot(_ v: SIMD8<Self>) -> SIMD8<Self>
}

extension Float: VectorMath {
    @inlinable @inline(__always)
    public static func fastExp(_ x: Float) -> Float {
        let clamped = Swift.min(Swift.max(x, -87.33), 88.72)
        let n = (clamped * 1.442_695_04).rounded(.toNearestOrEven)
        let r = clamped - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        let e = p * (r * r) + r + 1
        // 2ⁿ as two factors 2^(n/2)·2^(n − n/2): n reaches 128 near the top of the range, past one factor's exponent.
        // n + 1.5·2²³ holds the integer n (|n| ≤ 128) in its low mantissa bits: unlike Int32(n), this cannot trap on a
        // NaN input, whose result stays NaN through e.
        let whole = Int32(bitPattern: (n + 12_582_912).bitPattern) &- 0x4B40_0000
        let half = whole >> 1
        let first = Float(bitPattern: UInt32(truncatingIfNeeded: half &+ 127) << 23)
        let second = Float(bitPattern: UInt32(truncatingIfNeeded: whole &- half &+ 127) << 23)
        return e * first * second
    }

    @inlinable @inline(__always)
    public static func fastLog(_ x: Float) -> Float {
        let bits = x.bitPattern
        var exponent = Float(Int32(truncatingIfNeeded: bits >> 23) &- 127)
        var m = Float(bitPattern: (bits & 0x007F_FFFF) | 0x3F80_0000)  // [1, 2)
        let big = m > 1.414_213_56
        m = big ? m * 0.5 : m
        exponent = big ? exponent + 1 : exponent
        let t = m - 1
        let z = t * t
        var p: Float = 7.037_683_629_2e-2
        p = p * t - 1.151_461_031_0e-1
        p = p * t + 1.167_699_874_0e-1
        p = p * t - 1.242_014_084_6e-1
        p = p * t + 1.424_932_278_7e-1
        p = p * t - 1.666_805_766_5e-1
        p = p * t + 2.000_071_476_5e-1
        p = p * t - 2.499_999_399_3e-1
        p = p * t + 3.333_333_117_4e-1
        var y = p * t * z
        y += exponent * -2.121_944_40e-4
        y += -0.5 * z
        return t + y + exponent * 0.693_359_375
    }
}

extension Float {
    @inlinable @inline(__always) public static func fastExpMinusOne(_ x: Float) -> Float { fastExp(x) - 1 }
    @inlinable @inline(__always) public static func fastLogOnePlus(_ x: Float) -> Float { fastLog(1 + x) }

    /// log(1 + e) = 2 atanh(s) with s = e/(2 + e) ∈ [0, 1/3]: the odd series to s¹³ (truncation below 3e-8 relative).
    /// Cheaper than `fastLog(1 + e)` in the Bernoulli likelihood's pass, where e = exp(−|a|) is already known.
    @inlinable @inline(__always)
    public static func fastLogOnePlusUnit(_ e: Float, reciprocalOfTwoPlus r: Float) -> Float {
        let s = e * r, s2 = s * s
        var series: Float = 1 / 13
        series = series * s2 + 1 / 11
        series = series * s2 + 1 / 9
        series = series * s2 + 1 / 7
        series = series * s2 + 1 / 5
        series = series * s2 + 1 / 3
        series = series * s2 + 1
        return 2 * s * series
    }

    @inlinable @inline(__always)
    public static func fastSquareRoot(_ v: SIMD8<Float>) -> SIMD8<Float> {
        #if arch(x86_64)
        // SSE is part of every x86-64, so no target flag is needed; two 4-lane square roots cost what one 8-lane does,
        // and a third of the Newton steps below (Adam's update is 2.5× faster with it).
        return SIMD8(lowHalf: _mm_sqrt_ps(v.lowHalf), highHalf: _mm_sqrt_ps(v.highHalf))
        #else
        return newtonSquareRoot(v)
        #endif
    }

    /// √v by the reciprocal-square-root bit trick and three Newton steps: the portable form of `fastSquareRoot`.
    @inlinable @inline(__always)
    public static func newtonSquareRoot(_ v: SIMD8<Float>) -> SIMD8<Float> {
        // Subnormals are scaled by 2⁶⁴ into the normal range (the bit trick needs a normal exponent), then √ by 2⁻³².
        let tiny = v .< Float.leastNormalMagnitude
        let x = v.replacing(with: v * 0x1p64, where: tiny)
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        var y = unsafeBitCast(SIMD8<UInt32>(repeating: 0x5F37_5A86) &- (bits &>> 1), to: SIMD8<Float>.self)
        let half = 0.5 * x
        y = y * (1.5 - half * y * y)
        y = y * (1.5 - half * y * y)
        y = y * (1.5 - half * y * y)
        return (x * y).replacing(with: x * y * 0x1p-32, where: tiny)
    }
}

extension Double: VectorMath {
    @inlinable @inline(__always) public static func fastExpMinusOne(_ x: Double) -> Double { Double.expm1(x) }
    @inlinable @inline(__always) public static func fastLogOnePlus(_ x: Double) -> Double { Double.log1p(x) }
    @inlinable @inline(__always)
    public static func fastLogOnePlusUnit(_ e: Double, reciprocalOfTwoPlus _: Double) -> Double { Double.log1p(e) }
    @inlinable @inline(__always)
    public static func fastSquareRoot(_ v: SIMD8<Double>) -> SIMD8<Double> {
        var out = v
        for i in 0..<8 { out[i] = v[i].squareRoot() }
        return out
    }
    @inlinable @inline(__always) public static func fastExp(_ x: Double) -> Double { Double.exp(x) }
    @inlinable @inline(__always) public static func fastLog(_ x: Double) -> Double { Double.log(x) }
}
