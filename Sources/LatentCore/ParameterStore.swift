/// A named, contiguous slice of a model's flat parameter (and gradient) buffer.
public struct ParameterView: Sendable, Equatable {
    public let name: String
    public let offset: Int
    public let count: Int
    public var range: Range<Int> { offset..<(offset + count) }
}

/// One flat parameter buffer and one flat gradient buffer for a whole model, with named views into them.
///
/// Adam, gradient checks, checkpoints and gradient reductions each see one contiguous array (DESIGN.md §Conventions 3).
public final class ParameterStore<T: BLASScalar>: @unchecked Sendable {
    public private(set) var views: [ParameterView] = []
    public private(set) var count = 0
    public private(set) var parameters = Buffer<T>(count: 0)
    public private(set) var gradients = Buffer<T>(count: 0)
    private var frozen = false

    public init() {}

    /// Reserves `count` scalars under `name` and returns the view; all reservations come before `allocate()`.
    @discardableResult
    public func reserve(_ name: String, count: Int) -> ParameterView {
        precondition(!frozen, "ParameterStore: reserve after allocate")
        let view = ParameterView(name: name, offset: self.count, count: count)
        views.append(view)
        self.count += count
        return view
    }

    /// Allocates the two flat buffers (zeroed) once all views are reserved.
    public func allocate() {
        frozen = true
        parameters = Buffer(count: count)
        gradients = Buffer(count: count)
    }

    public func view(named name: String) -> ParameterView? { views.first { $0.name == name } }
}
