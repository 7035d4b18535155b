#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library's double-precision functions under names that cannot collide with `BLASScalar`'s static members.
@usableFromInline enum MathDouble {
    @usableFromInline static func exp(_ x: Double) -> Double { _exp(x) }
    @usableFromInline static func log(_ x: Double) -> Double { _log(x) }
    @usableFromInline static func log1p(_ x: Double) -> Double { _log1p(x) }
    @usableFromInline static func expm1(_ x: Double) -> Double { _expm1(x) }
    @usableFromInline static func cos(_ x: Double) -> Double { _cos(x) }
    @usableFromInline static func sin(_ x: Double) -> Double { _sin(x) }
}

@inline(__always) private func _exp(_ x: Double) -> Double { exp(x) }
@inline(__always) private func _log(_ x: Double) -> Double { log(x) }
@inline(__always) private func _log1p(_ x: Double) -> Double { log1p(x) }
@inline(__always) private func _expm1(_ x: Double) -> Double { expm1(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { cos(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { sin(x) }
