import LatentCore
import TestSupport
import XCTest
@testable import LatentModels

/// The engine reproduces independent float64 reference values (shared/vectors) to 1e-9 relative error.
final class ReferenceVectorTests: XCTestCase {
    func testVAEDiagonalReproducesReference() throws {
        let v = try ReferenceVector("vae_diagonal")
        let model = v.makeModel()
        let ws = StepWorkspace(model: model, capacity: v.batch)
        for (i, x) in v.x.enumerated() { ws.x[i] = x }
        for (i, e) in v.eps.enumerated() { ws.noise[i] = e }
        let sums = try ELBO.evaluate(model: model, parameters: model.store.parameters.pointer, rows: v.batch,
                                     workspace: ws, gradients: model.store.gradients.pointer,
                                     lossScale: 1 / Double(v.batch))
        let expected = v.expected
        XCTAssertLessThan(relativeError(sums.nelbo / Double(v.batch), expected["loss"] as! Double), 1e-9)
        let rec = flatten(expected["rec"]!), kl = flatten(expected["kl"]!)
        XCTAssertLessThan(maxRelativeError((0..<v.batch).map { ws.rec[$0] }, rec).error, 1e-9)
        XCTAssertLessThan(maxRelativeError((0..<v.batch).map { ws.kl[$0] }, kl).error, 1e-9)
        XCTAssertLessThan(maxRelativeError((0..<(v.batch * v.latent)).map { ws.z[$0] }, flatten(expected["z"]!)).error, 1e-9)
        let worst = maxRelativeError(model.store.gradients.array, v.expectedGradient(for: model), floor: 1e-12)
        XCTAssertLessThan(worst.error, 1e-9, "gradient entry \(worst.index)")
    }
}
