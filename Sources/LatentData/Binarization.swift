import LatentCore

/// How images become a model's inputs: `dynamic` draws binary pixels afresh every training step (and a fixed draw
/// for evaluation), `none` takes the intensities in [0, 1] as they are (for a continuous likelihood).
public enum BinarizationMode: String, Codable, Sendable, CaseIterable {
    /// Binary pixels, each 1 with probability intensity/255: drawn afresh every training step, and once, statically,
    /// for the test set (MATH.md §1).
    case dynamic
    /// The intensities in [0, 1] as they are, for the Gaussian likelihood (MATH.md §9).
    case none
}

/// Turns grey levels into {0, 1} pixels: each pixel is 1 with probability intensity/255 (MATH.md §1 data model).
public enum Binarization {
    /// 24-bit thresholds: pixel value v is 1 when a uniform 24-bit draw is below `thresholds[v]`.
    @usableFromInline package static let thresholds: [UInt32] = (0..<256).map { UInt32((Double($0) / 255 * Double(1 << 24)).rounded()) }

    /// Fresh Bernoulli draws for one image into `out` (dynamic binarization), from the caller's keyed stream.
    /// Two pixels per 64-bit draw, each compared as 24 bits against the pixel's threshold.
    @inlinable
    package static func sample(
        pixels: UnsafePointer<UInt8>, count: Int, thresholds: UnsafePointer<UInt32>,
        rng: inout RandomStream, into out: UnsafeMutablePointer<Float>
    ) {
        var i = 0
        while i + 1 < count {
            let r = rng.next()
            let a = UInt32(truncatingIfNeeded: r) & 0xFF_FFFF
            let b = UInt32(truncatingIfNeeded: r >> 32) & 0xFF_FFFF
            out[i] = bit(a, below: thresholds[Int(pixels[i])])
            out[i + 1] = bit(b, below: thresholds[Int(pixels[i + 1])])
            i += 2
        }
        if i < count {
            let a = UInt32(truncatingIfNeeded: rng.next()) & 0xFF_FFFF
            out[i] = bit(a, below: thresholds[Int(pixels[i])])
        }
    }

    /// `sample` for eight images at once, image `lane` at `pixels(lane)` from lane `lane` of `rng` into
    /// `out + lane * count`: the same pixels as eight calls of `sample` with the eight streams. Sixteen pixels of an
    /// image come from eight steps of its stream (two 24-bit draws each, low half first), so after eight steps of
    /// all lanes each image's next sixteen pixels are compared in one AVX-512 vector, without the threshold table:
    /// a < round(v·2²⁴/255) exactly when 255·a + 128 ≤ v·2²⁴ (v·2²⁴/255 is never a half-integer), in 32 bits.
    @inlinable
    package static func sample(pixels: (Int) -> UnsafePointer<UInt8>, count: Int, thresholds: UnsafePointer<UInt32>,
                              rng: inout RandomStreams8, into out: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 16 <= count {
            let steps = transpose(rng.next(), rng.next(), rng.next(), rng.next(),
                                  rng.next(), rng.next(), rng.next(), rng.next())
            @inline(__always) func image(_ lane: Int, _ steps: SIMD8<UInt64>) {
                let a = unsafeBitCast(steps, to: SIMD16<UInt32>.self) & 0xFF_FFFF
                let bytes = UnsafeRawPointer(pixels(lane) + i).loadUnaligned(as: SIMD16<UInt8>.self)
                var v = SIMD16<UInt32>()
                for k in 0..<16 { v[k] = UInt32(bytes[k]) }
                let on = (255 &* a &+ 128) .<= (v &<< 24)
                UnsafeMutableRawPointer(out + lane * count + i)
                    .storeBytes(of: SIMD16<Float>.zero.replacing(with: 1, where: on), as: SIMD16<Float>.self)
            }
            image(0, steps.0)
            image(1, steps.1)
            image(2, steps.2)
            image(3, steps.3)
            image(4, steps.4)
            image(5, steps.5)
            image(6, steps.6)
            image(7, steps.7)
            i += 16
        }
        guard i < count else { return }
        for lane in 0..<8 {
            var stream = rng.stream(lane)
            sample(pixels: pixels(lane) + i, count: count - i, thresholds: thresholds, rng: &stream,
                   into: out + lane * count + i)
        }
    }

    /// The 8×8 transpose of eight vectors (row r of the result holds element r of each), in three rounds of
    /// constant shuffles that LLVM turns into vector permutes.
    @inlinable @inline(__always)
    static func transpose(_ r0: SIMD8<UInt64>, _ r1: SIMD8<UInt64>, _ r2: SIMD8<UInt64>, _ r3: SIMD8<UInt64>,
                          _ r4: SIMD8<UInt64>, _ r5: SIMD8<UInt64>, _ r6: SIMD8<UInt64>, _ r7: SIMD8<UInt64>)
        -> (SIMD8<UInt64>, SIMD8<UInt64>, SIMD8<UInt64>, SIMD8<UInt64>,
            SIMD8<UInt64>, SIMD8<UInt64>, SIMD8<UInt64>, SIMD8<UInt64>) {
        @inline(__always) func even(_ a: SIMD8<UInt64>, _ b: SIMD8<UInt64>) -> SIMD8<UInt64> {
            SIMD8(a[0], b[0], a[2], b[2], a[4], b[4], a[6], b[6])
        }
        @inline(__always) func odd(_ a: SIMD8<UInt64>, _ b: SIMD8<UInt64>) -> SIMD8<UInt64> {
            SIMD8(a[1], b[1], a[3], b[3], a[5], b[5], a[7], b[7])
        }
        @inline(__always) func evenPairs(_ a: SIMD8<UInt64>, _ b: SIMD8<UInt64>) -> SIMD8<UInt64> {
            SIMD8(a[0], a[1], b[0], b[1], a[4], a[5], b[4], b[5])
        }
        @inline(__always) func oddPairs(_ a: SIMD8<UInt64>, _ b: SIMD8<UInt64>) -> SIMD8<UInt64> {
            SIMD8(a[2], a[3], b[2], b[3], a[6], a[7], b[6], b[7])
        }
        @inline(__always) func low(_ a: SIMD8<UInt64>, _ b: SIMD8<UInt64>) -> SIMD8<UInt64> {
            SIMD8(lowHalf: a.lowHalf, highHalf: b.lowHalf)
        }
        @inline(__always) func high(_ a: SIMD8<UInt64>, _ b: SIMD8<UInt64>) -> SIMD8<UInt64> {
            SIMD8(lowHalf: a.highHalf, highHalf: b.highHalf)
        }
        // Round 1: element pairs (0 1, 2 3, …); round 2: pairs of pairs; round 3: halves.
        let a0 = even(r0, r1), a1 = odd(r0, r1), a2 = even(r2, r3), a3 = odd(r2, r3)
        let a4 = even(r4, r5), a5 = odd(r4, r5), a6 = even(r6, r7), a7 = odd(r6, r7)
        let b0 = evenPairs(a0, a2), b1 = evenPairs(a1, a3), b2 = oddPairs(a0, a2), b3 = oddPairs(a1, a3)
        let b4 = evenPairs(a4, a6), b5 = evenPairs(a5, a7), b6 = oddPairs(a4, a6), b7 = oddPairs(a5, a7)
        return (low(b0, b4), low(b1, b5), low(b2, b6), low(b3, b7),
                high(b0, b4), high(b1, b5), high(b2, b6), high(b3, b7))
    }

    /// 1 if a < t, else 0, without a branch: for 24-bit a and t, a − t wraps past 2³¹ exactly when a < t. A
    /// compare-and-branch here is taken at random for every grey pixel, and its mispredictions made binarization
    /// the largest cost of a step outside the GEMMs.
    @inlinable @inline(__always)
    static func bit(_ a: UInt32, below t: UInt32) -> Float { Float((a &- t) >> 31) }

    /// The same draws as `sample(…into: UnsafeMutablePointer<Float>)`, converted to any scalar type through
    /// `scratch` (room for `count` Floats). Inlinable so that callers get it specialized to their scalar type.
    @inlinable
    package static func sample<T: BLASScalar>(
        pixels: UnsafePointer<UInt8>, count: Int, thresholds: UnsafePointer<UInt32>,
        rng: inout RandomStream, into out: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<Float>
    ) {
        sample(pixels: pixels, count: count, thresholds: thresholds, rng: &rng, into: scratch)
        for i in 0..<count { out[i] = T(scratch[i]) }
    }

    /// A fixed binarization of a whole image set: image i uses the stream keyed by (seed, i), so any subset agrees.
    /// Inlinable (specialized per scalar type at the call site): unspecialized, its per-pixel conversions went
    /// through generic witnesses, a sixth of `latent eval --limit 100`'s 0.6 s.
    @inlinable
    public static func staticBinarized<T: BLASScalar>(_ images: ImageSet, seed: UInt64, as _: T.Type = T.self) -> [T] {
        let d = images.pixelsPerImage
        var out = [T](repeating: 0, count: images.count * d)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, d))
        defer { scratch.deallocate() }
        thresholds.withUnsafeBufferPointer { th in
            images.pixels.withUnsafeBufferPointer { px in
                out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<images.count {
                        var rng = RandomStream(seed: seed, purpose: .staticBinarization, index: UInt64(i))
                        sample(pixels: px.baseAddress! + i * d, count: d, thresholds: th.baseAddress!, rng: &rng,
                               into: o.baseAddress! + i * d, scratch: scratch)
                    }
                }
            }
        }
        return out
    }

    /// Intensities v/255 of `count` pixels (the inputs of `BinarizationMode.none`).
    @inlinable
    package static func intensities<T: BLASScalar>(pixels: UnsafePointer<UInt8>, count: Int,
                                                  into out: UnsafeMutablePointer<T>) {
        for i in 0..<count { out[i] = T(Float(pixels[i]) / 255) }
    }

    /// A whole image set as evaluation inputs: its fixed binarization under `dynamic` (`staticBinarized`), its
    /// intensities under `none`.
    @inlinable
    public static func evaluationInputs<T: BLASScalar>(_ images: ImageSet, mode: BinarizationMode, seed: UInt64,
                                                       as _: T.Type = T.self) -> [T] {
        guard mode == .none else { return staticBinarized(images, seed: seed, as: T.self) }
        var out = [T](repeating: 0, count: images.count * images.pixelsPerImage)
        images.pixels.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { o in
                intensities(pixels: px.baseAddress!, count: px.count, into: o.baseAddress!)
            }
        }
        return out
    }
}
