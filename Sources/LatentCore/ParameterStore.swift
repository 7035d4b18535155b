/// A named, contiguous slice of a model's flat parameter (and gradient) buffer.
@usableFromInline package struct ParameterView: Sendable, Equatable {
    @usableFromInline package let name: String
    @usableFromInline package let offset: Int
    @usableFromInline package let count: Int
    @usableFromInline package var range: Range<Int> { offset..<(offset + count) }
}

/// One flat parameter buffer and one flat gradient buffer for a whole model, with named views into them.
///
/// Adam, gradient checks, checkpoints and gradient reductions each see one contiguous array (DESIGN.md §Conventions 3).
@usableFromInline package final class ParameterStore<T: BLASScalar>: @unchecked Sendable {
    @usableFromInline package private(set) var views: [ParameterView] = []
    @usableFromInline package private(set) var count = 0
    @usableFromInline package private(set) var parameters = Buffer<T>(count: 0)
    @usableFromInline package private(set) var gradients = Buffer<T>(count: 0)
    private var frozen = false

    @usableFromInline package init() {}

    /// Reserves `count` scalars under `name` and returns the view; all reservations come before `allocate()`.
    @discardableResult
    @usableFromInline package func reserve(_ name: String, count: Int) -> ParameterView {
        precondition(!frozen, "ParameterStore: reserve after allocate")
        let view = ParameterView(name: name, offset: self.count, count: count)
        views.append(view)
        self.count += count
        return view
    }

    /// Allocates the two flat buffers (zeroed) once all views are reserved.
    @usableFromInline package func allocate() {
        frozen = true
        parameters = Buffer(count: count)
        gradients = Buffer(count: count)
    }

    @usableFromInline package func view(named name: String) -> ParameterView? { views.first { $0.name == name } }
}
