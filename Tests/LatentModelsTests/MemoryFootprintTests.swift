import LatentCore
import LatentData
@testable import LatentModels
@testable import LatentTraining
import XCTest

/// The memory estimate's sizes, computed from a configuration alone before anything is allocated, against the
/// buffers the initializers allocate: the parameter store, a step's workspace and every strategy's buffers.
final class MemoryFootprintTests: XCTestCase {
    let configurations: [ModelConfiguration] = [
        ModelConfiguration(inputs: 16, hidden: [7, 5], latent: 3),
        ModelConfiguration(model: .gmvae, posterior: .full, inputs: 16, hidden: [9], latent: 4, components: 6),
        ModelConfiguration(model: .iwae, posterior: .covariance, inputs: 16, hidden: [8, 6], latent: 5, samples: 3,
                           likelihood: .gaussian, binarization: .none),
        ModelConfiguration(model: .iwae, inputs: 16, hidden: [40], latent: 2, samples: 4, prior: .mixture,
                           components: 3),
    ]

    func testTheParameterCountNeedsNoModel() {
        for configuration in configurations {
            XCTAssertEqual(VariationalAutoencoder<Float>.parameterCount(of: configuration),
                           VariationalAutoencoder<Float>(configuration).parameterCount, "\(configuration)")
        }
    }

    func testAWorkspacesScalarsAreTheBuffersItAllocates() {
        for configuration in configurations {
            let model = VariationalAutoencoder<Float>(configuration)
            for (capacity, samples) in [(1, nil), (7, nil), (5, 1), (3, 11)] as [(Int, Int?)] {
                let workspace = StepWorkspace(model: model, capacity: capacity, samples: samples)
                XCTAssertEqual(StepWorkspace<Float>.scalars(configuration, capacity: capacity, samples: samples),
                               Self.ownedScalars(workspace), "\(configuration) capacity \(capacity)")
            }
            let shared = StepWorkspace(model: model, capacity: 12)
            let view = StepWorkspace(viewOf: shared, model: model, examples: 4..<8)
            XCTAssertEqual(StepWorkspace<Float>.viewScalars(configuration, examples: 4),
                           Self.ownedScalars(view, skipping: [shared]), "\(configuration) view")
        }
    }

    /// Each strategy's buffers (its workspaces, gradients and blocks; not the model's) at least as many as the
    /// estimate counts, and at most 10 % (and a few hundred scalars) fewer.
    func testTheStepEstimateBoundsEveryStrategysBuffers() throws {
        for configuration in configurations {
            let side = Int(Double(configuration.inputs).squareRoot())
            for (parallelism, threads, batch) in [(Trainer.Parallelism.reference, 1, 9), (.data, 3, 10),
                                                  (.tensor, 2, 9), (.tensor, 3, 100), (.blas, 2, 9), (.data, 4, 50)] {
                let model = VariationalAutoencoder<Float>(configuration)
                let trainer = try Trainer(model: model, images: images(count: 120, side: side, seed: 5),
                                          batchSize: batch, learningRate: 1e-3, seed: 1, threads: threads,
                                          parallelism: parallelism)
                let estimate = MemoryEstimate.stepScalars(configuration, parallelism: trainer.parallelism, rows: batch,
                                                          threads: threads, parameters: model.parameterCount)
                let actual = Self.ownedScalars(trainer.strategy, skipping: [model, trainer.pool])
                let name = "\(configuration) \(parallelism) × \(threads), batch \(batch)"
                XCTAssertEqual(estimate.workers, trainer.workers, name)
                XCTAssertGreaterThanOrEqual(estimate.scalars, actual, name)
                XCTAssertLessThanOrEqual(Double(estimate.scalars), 1.1 * Double(actual) + 300, name)
            }
        }
    }

    /// A training set larger than the images it has is no more than its images: the workspaces are for the rows a
    /// step can take.
    func testTheWorkspacesAreForTheEffectiveBatch() throws {
        let configuration = configurations[0]
        let model = VariationalAutoencoder<Float>(configuration)
        let trainer = try Trainer(model: model, images: images(count: 6, side: 4, seed: 5), batchSize: 1_000_000,
                                  learningRate: 1e-3, seed: 1, threads: 1)
        let actual = Self.ownedScalars(trainer.strategy, skipping: [model, trainer.pool])
        XCTAssertEqual(actual, StepWorkspace<Float>.scalars(configuration, capacity: 6) + model.parameterCount)
    }

    /// The scalars of every `Buffer<Float>` that owns its memory, reachable from `root` through stored properties,
    /// each counted once, not through the objects in `skipping`.
    static func ownedScalars(_ root: Any, skipping: [AnyObject] = []) -> Int {
        var seen = Set(skipping.map(ObjectIdentifier.init))
        var total = 0
        func walk(_ value: Any) {
            if let buffer = value as? Buffer<Float> {
                guard seen.insert(ObjectIdentifier(buffer)).inserted else { return }
                let base = Mirror(reflecting: buffer).children.first { $0.label == "base" }?.value
                if let base, Mirror(reflecting: base).children.isEmpty { total += buffer.count }
                return
            }
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .class {
                guard seen.insert(ObjectIdentifier(value as AnyObject)).inserted else { return }
            }
            var level: Mirror? = mirror
            while let current = level {
                for child in current.children { walk(child.value) }
                level = current.superclassMirror
            }
        }
        walk(root)
        return total
    }
}
