import Foundation
import LatentCore
import LatentData
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// The signal-to-noise ratio of MATH.md §10: its definition on known draws, and Rainforth et al.'s effect on a
/// small trained model: the standard IWAE encoder gradient's SNR falls as m grows, DReG's does not.
final class SignalToNoiseTests: XCTestCase {
    func testSignalToNoiseOfKnownDraws() {
        // Coordinate 0: draws 1, 3 (mean 2, sd √2); coordinate 1: −1, −1 (never varies); coordinate 2: 0, 2 (mean 1,
        // sd √2).
        var moments = GradientMoments(dimension: 3)
        for draw in [[1.0, -1, 0], [3.0, -1, 2]] { draw.withUnsafeBufferPointer { moments.add($0.baseAddress!) } }
        let snr = moments.signalToNoise(over: ParameterGroup(name: "g", ranges: [0..<3]))
        XCTAssertEqual(snr.meanOverCoordinates, (2 / 2.0.squareRoot() + 1 / 2.0.squareRoot()) / 2, accuracy: 1e-15)
        XCTAssertEqual(snr.ratioOfNorms, (4.0 + 1 + 1).squareRoot() / 4.0.squareRoot(), accuracy: 1e-15)
    }

    /// A 4×4 model trained for 600 IWAE (m = 10) steps on four noisy prototypes, so that q is near its posterior.
    func trainedModel() throws -> (VariationalAutoencoder<Float>, [Float]) {
        let configuration = ModelConfiguration(model: .iwae, inputs: 16, hidden: [16], latent: 2, samples: 10)
        let model = VariationalAutoencoder<Float>(configuration)
        model.initialize(seed: 1)
        var rng = RandomStream(seed: 2, purpose: .sampling)
        let prototypes: [[UInt8]] = (0..<4).map { p in (0..<16).map { i in i % 4 == p || i / 4 == p ? 235 : 20 } }
        var pixels = [UInt8]()
        for _ in 0..<400 { pixels += prototypes[Int(rng.next() % 4)] }
        let images = ImageSet(count: 400, rows: 4, columns: 4, pixels: pixels)
        let trainer = try Trainer(model: model, images: images, batchSize: 20, learningRate: 3e-3, seed: 3, threads: 1,
                              parallelism: .reference)
        var epoch = 0
        while trainer.step < 600 {
            trainer.beginEpoch(epoch)
            for batch in 0..<trainer.stepsPerEpoch { _ = try trainer.trainStep(batch: batch) }
            epoch += 1
        }
        return (model, Binarization.evaluationInputs(images, mode: .dynamic, seed: 0, as: Float.self))
    }

    func testStandardEncoderSNRFallsWithSamplesAndDReGDoesNot() throws {
        let (model, inputs) = try trainedModel()
        let samples = [1, 10, 100]
        let report = try GradientVariance.measureImportanceWeighted(model: model, images: inputs, rows: 4,
                                                                    samples: samples, draws: 400, seed: 3)
        XCTAssertEqual(report.groups.count, samples.count * 2 * 3)
        func snr(_ estimator: GradientEstimator, _ m: Int) throws -> SignalToNoise {
            try XCTUnwrap(report.row(group: "encoder", estimator: estimator, samples: m)).snr
        }
        for (measure, value) in [("mean over coordinates", \SignalToNoise.meanOverCoordinates),
                                 ("ratio of norms", \SignalToNoise.ratioOfNorms)] {
            let standard = try samples.map { try snr(.standard, $0)[keyPath: value] }
            let dreg = try samples.map { try snr(.dreg, $0)[keyPath: value] }
            XCTAssertLessThan(standard[1], standard[0], "standard \(measure): \(standard)")
            XCTAssertLessThan(standard[2], standard[1], "standard \(measure): \(standard)")
            XCTAssertLessThan(standard[2], 0.5 * standard[0], "standard \(measure): \(standard)")
            XCTAssertGreaterThan(dreg[1], dreg[0], "dreg \(measure): \(dreg)")
            XCTAssertGreaterThan(dreg[2], dreg[1], "dreg \(measure): \(dreg)")
        }
        // With one sample DReG is STL, draw for draw.
        XCTAssertEqual(report.row(group: "encoder", estimator: .dreg, samples: 1)?.variance,
                       report.row(group: "encoder", estimator: .stl, samples: 1)?.variance)
        // The decoder gradient is the same under every estimator.
        for m in samples {
            for estimator in [GradientEstimator.stl, .dreg] {
                XCTAssertEqual(report.row(group: "decoder", estimator: estimator, samples: m)?.ratio, 1)
            }
        }
    }
}
