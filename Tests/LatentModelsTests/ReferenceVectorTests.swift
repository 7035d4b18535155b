import LatentCore
import TestSupport
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// The engine reproduces independent float64 reference values (shared/vectors) to 1e-9 relative error. The covariance
/// cases, written for a full k×k A, are re-expressed for the lower-triangular A (`CovarianceReferenceCase`).
final class ReferenceVectorTests: XCTestCase {
    /// The model for a vector, the gradient it expects, and the entries not compared.
    func prepared(_ v: ReferenceVector, file: StaticString, line: UInt) -> (VariationalAutoencoder<Double>, [Double], Set<Int>) {
        guard v.posterior == .covariance else {
            let model = v.makeModel()
            return (model, v.expectedGradient(for: model), [])
        }
        let converted = CovarianceReferenceCase(v)
        XCTAssertLessThan(converted.inconsistency, 1e-9, "\(v.name): per-example head gradients", file: file, line: line)
        XCTAssertLessThan(converted.asymmetry, 1e-9, "\(v.name): Ā A⁻¹ is symmetric", file: file, line: line)
        return (converted.model, converted.expectedGradient, Set(converted.uncheckedRanges.joined()))
    }

    /// Every gradient entry but the unchecked ones against the expected values.
    func checkGradient(_ model: VariationalAutoencoder<Double>, _ expected: [Double], skipping: Set<Int>, _ name: String,
                       file: StaticString, line: UInt) {
        let indices = expected.indices.filter { !skipping.contains($0) }
        let actual = model.store.gradients.array
        let worst = maxRelativeError(indices.map { actual[$0] }, indices.map { expected[$0] }, floor: 1e-12)
        XCTAssertLessThan(worst.error, 1e-9, "\(name): gradient entry \(worst.index >= 0 ? indices[worst.index] : -1)",
                          file: file, line: line)
    }

    func testVAEDiagonalReproducesReference() throws { try checkELBO("vae_diagonal") }
    func testVAEFullReproducesReference() throws { try checkELBO("vae_full") }
    func testVAECovarianceReproducesReference() throws { try checkELBO("vae_covariance") }
    func testGMVAEDiagonalReproducesReference() throws { try checkELBO("gmvae_diagonal") }
    func testGMVAEFullReproducesReference() throws { try checkELBO("gmvae_full") }
    func testIWAEDiagonalM3ReproducesReference() throws { try checkIWAE("iwae_diagonal_m3") }
    func testIWAECovarianceM3ReproducesReference() throws { try checkIWAE("iwae_covariance_m3") }
    func testIWAEGMVAEFullM3ReproducesReference() throws { try checkIWAE("iwae_gmvae_full_m3") }

    // MATH.md §10: the same losses, gradients by sticking the landing and by DReG.
    func testSTLVAEDiagonalReproducesReference() throws { try checkELBO("stl_vae_diagonal") }
    func testSTLGMVAEFullReproducesReference() throws { try checkELBO("stl_gmvae_full") }
    func testSTLVAECovarianceReproducesReference() throws { try checkELBO("stl_vae_covariance") }
    func testSTLIWAEDiagonalM3ReproducesReference() throws { try checkIWAE("stl_iwae_diagonal_m3") }
    func testDReGIWAEDiagonalM3ReproducesReference() throws { try checkIWAE("dreg_iwae_diagonal_m3") }
    func testDReGIWAEFullM3ReproducesReference() throws { try checkIWAE("dreg_iwae_full_m3") }
    func testDReGIWAECovarianceM3ReproducesReference() throws { try checkIWAE("dreg_iwae_covariance_m3") }
    func testDReGIWAEGMVAEFullM3ReproducesReference() throws { try checkIWAE("dreg_iwae_gmvae_full_m3") }

    /// Log-weights, per-example bounds, loss and every gradient of an importance-weighted case.
    func checkIWAE(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let v = try ReferenceVector(name)
        let (model, expectedGradient, skipping) = prepared(v, file: file, line: line)
        let ws = StepWorkspace(model: model, capacity: v.batch)
        for (i, x) in v.x.enumerated() { ws.x[i] = x }
        for (i, e) in v.eps.enumerated() { ws.noise[i] = e }
        let sums = try Objective.evaluate(model.objective, model: model, parameters: model.store.parameters.pointer,
                                          rows: v.batch, samples: v.samples, workspace: ws,
                                          gradients: model.store.gradients.pointer, lossScale: 1 / Double(v.batch))
        let expected = v.expected
        XCTAssertLessThan(relativeError(sums.loss / Double(v.batch), expected["loss"] as! Double), 1e-9,
                          "\(name): loss", file: file, line: line)
        let logWeights = (0..<(v.samples * v.batch)).map { ws.logWeights[$0] }
        XCTAssertLessThan(maxRelativeError(logWeights, flatten(expected["log_weights"]!)).error, 1e-9,
                          "\(name): log weights", file: file, line: line)
        let bounds = (0..<v.batch).map { -ws.bound[$0] }
        XCTAssertLessThan(maxRelativeError(bounds, flatten(expected["negative_iwae_bound"]!)).error, 1e-9,
                          "\(name): bounds", file: file, line: line)
        XCTAssertLessThan(maxRelativeError((0..<(v.samples * v.batch * v.latent)).map { ws.z[$0] },
                                           flatten(expected["z"]!), floor: 1e-12).error, 1e-9,
                          "\(name): z", file: file, line: line)
        checkGradient(model, expectedGradient, skipping: skipping, name, file: file, line: line)
    }

    /// Loss, per-example Rec/KL, z, L and every parameter gradient of an ELBO case.
    func checkELBO(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let v = try ReferenceVector(name)
        let (model, expectedGradient, skipping) = prepared(v, file: file, line: line)
        let ws = StepWorkspace(model: model, capacity: v.batch)
        for (i, x) in v.x.enumerated() { ws.x[i] = x }
        for (i, e) in v.eps.enumerated() { ws.noise[i] = e }
        let sums = try Objective.evaluate(model.objective, model: model, parameters: model.store.parameters.pointer,
                                          rows: v.batch, samples: 1, workspace: ws,
                                          gradients: model.store.gradients.pointer, lossScale: 1 / Double(v.batch))
        let expected = v.expected
        XCTAssertLessThan(relativeError(sums.nelbo / Double(v.batch), expected["loss"] as! Double), 1e-9,
                          "\(name): loss", file: file, line: line)
        let rec = flatten(expected["rec"]!), kl = flatten(expected["kl"]!)
        XCTAssertLessThan(maxRelativeError((0..<v.batch).map { ws.rec[$0] }, rec).error, 1e-9, "\(name): rec",
                          file: file, line: line)
        XCTAssertLessThan(maxRelativeError((0..<v.batch).map { ws.kl[$0] }, kl).error, 1e-9, "\(name): kl",
                          file: file, line: line)
        if let logPrior = expected["log_prior"] {
            XCTAssertLessThan(maxRelativeError((0..<v.batch).map { ws.logPrior[$0] }, flatten(logPrior)).error, 1e-9,
                              "\(name): log prior", file: file, line: line)
        }
        XCTAssertLessThan(maxRelativeError((0..<(v.batch * v.latent)).map { ws.z[$0] }, flatten(expected["z"]!),
                                           floor: 1e-12).error, 1e-9, "\(name): z", file: file, line: line)
        var factors = [Double]()
        let l = UnsafeMutablePointer<Double>.allocate(capacity: v.latent * v.latent)
        defer { l.deallocate() }
        for r in 0..<v.batch {
            model.posterior.factor(scratch: ws.scratch.pointer, row: r, into: l)
            factors += (0..<(v.latent * v.latent)).map { l[$0] }
        }
        XCTAssertLessThan(maxRelativeError(factors, flatten(expected["L"]!), floor: 1e-12).error, 1e-9,
                          "\(name): L", file: file, line: line)
        checkGradient(model, expectedGradient, skipping: skipping, name, file: file, line: line)
    }
}
