/// SplitMix64 finalizer: a bijective 64-bit mixer used to derive independent stream keys.
@inlinable @inline(__always)
package func splitMix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// What a random stream is used for; part of its key so that streams never overlap.
@usableFromInline package enum RandomPurpose: UInt64, Sendable {
    case initialization = 1, shuffle, binarization, noise, staticBinarization, sampling, evaluation
}

/// A seeded xoshiro256++ generator: fast, reproducible, and keyed by (seed, purpose, step, index).
///
/// Training keys each example's draws by its step and position in the batch, so results do not depend on which
/// thread draws them.
@usableFromInline package struct RandomStream: RandomNumberGenerator, Sendable {
    @usableFromInline var s0, s1, s2, s3: UInt64
    @usableFromInline var spareNormal: Double?

    /// A stream for `seed`, further keyed by a purpose and two counters (e.g. step and example index).
    @inlinable
    package init(seed: UInt64, purpose: RandomPurpose = .initialization, step: UInt64 = 0, index: UInt64 = 0) {
        var k = splitMix64(seed ^ 0x5EED_0000_0000_0000)
        k = splitMix64(k ^ purpose.rawValue)
        k = splitMix64(k ^ step)
        k = splitMix64(k ^ (index &* 0x9E37_79B9_7F4A_7C15))
        s0 = splitMix64(k)
        s1 = splitMix64(s0)
        s2 = splitMix64(s1)
        s3 = splitMix64(s2)
        if (s0 | s1 | s2 | s3) == 0 { s0 = 1 }
        spareNormal = nil
    }

    /// A stream continuing from a raw xoshiro state (a lane of `RandomStreams8`).
    @inlinable
    init(state: (UInt64, UInt64, UInt64, UInt64)) {
        (s0, s1, s2, s3) = state
        spareNormal = nil
    }

    @inlinable @inline(__always)
    package mutating func next() -> UInt64 {
        let result = rotl(s0 &+ s3, 23) &+ s0
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inlinable @inline(__always)
    func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 53 random bits.
    @inlinable @inline(__always)
    package mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Standard normal by the Box–Muller transform (pairs; the second value is kept for the next call).
    @inlinable
    package mutating func normal() -> Double {
        if let s = spareNormal {
            spareNormal = nil
            return s
        }
        let u1 = 1 - uniform()  // (0, 1]
        let u2 = uniform()
        let r = (-2 * MathDouble.log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        spareNormal = r * MathDouble.sin(theta)
        return r * MathDouble.cos(theta)
    }

    /// Bernoulli draw with success probability p.
    @inlinable @inline(__always)
    package mutating func bernoulli(_ p: Double) -> Bool { uniform() < p }

    /// Fills `count` values with standard normals.
    @inlinable
    package mutating func fillNormal<T: BLASScalar>(_ out: UnsafeMutablePointer<T>, count: Int) {
        var i = 0
        while i + 1 < count {
            let u1 = 1 - uniform()
            let u2 = uniform()
            let r = (-2 * MathDouble.log(u1)).squareRoot()
            let theta = 2 * Double.pi * u2
            out[i] = T(r * MathDouble.cos(theta))
            out[i + 1] = T(r * MathDouble.sin(theta))
            i += 2
        }
        if i < count { out[i] = T(normal()) }
    }

    /// Uniform integer in 0..<bound (Lemire's nearly divisionless method through the standard library).
    @inlinable
    package mutating func index(below bound: Int) -> Int { Int.random(in: 0..<bound, using: &self) }
}

/// Eight `RandomStream`s stepped together, one per SIMD lane (one AVX-512 register per state word): the same numbers
/// as the eight streams, lane by lane. A single xoshiro stream is a chain of dependent operations; eight in lanes (one
/// vector instruction each step) let per-row draws such as the training step's binarization run eight rows at the
/// speed of one. (A version generic over the lane count compiled the binarization's transposes into element moves,
/// at half the speed.)
@usableFromInline package struct RandomStreams8: Sendable {
    @usableFromInline var s0, s1, s2, s3: SIMD8<UInt64>

    /// Lane i continues `stream(i)` (its Box–Muller spare is not carried over).
    @inlinable
    package init(_ stream: (Int) -> RandomStream) {
        s0 = .zero
        s1 = .zero
        s2 = .zero
        s3 = .zero
        for lane in 0..<8 {
            let source = stream(lane)
            s0[lane] = source.s0
            s1[lane] = source.s1
            s2[lane] = source.s2
            s3[lane] = source.s3
        }
    }

    /// The stream in lane `lane`, continuing where the lanes are.
    @inlinable
    package func stream(_ lane: Int) -> RandomStream {
        RandomStream(state: (s0[lane], s1[lane], s2[lane], s3[lane]))
    }

    /// The next value of each stream (xoshiro256++, as `RandomStream.next`).
    @inlinable @inline(__always)
    package mutating func next() -> SIMD8<UInt64> {
        let result = RandomStreams8.rotl(s0 &+ s3, 23) &+ s0
        let t = s1 &<< 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = RandomStreams8.rotl(s3, 45)
        return result
    }

    @inlinable @inline(__always)
    static func rotl(_ x: SIMD8<UInt64>, _ k: UInt64) -> SIMD8<UInt64> { (x &<< k) | (x &>> (64 - k)) }
}
