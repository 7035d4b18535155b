import Foundation
import LatentData
import XCTest

/// The PNG writer's size limit and the grid geometry it is derived from, against brute-force layouts.
final class PNGWriterTests: XCTestCase {
    func testEncodeRejectsImagesWiderOrTallerThanTheLimit() throws {
        let side = PNGWriter.maximumSide
        XCTAssertNoThrow(try PNGWriter.encode(GrayImage(width: side, height: 1)))
        for (width, height) in [(side + 1, 1), (1, side + 1), (1_000_001, 1)] {
            XCTAssertThrowsError(try PNGWriter.encode(GrayImage(width: width, height: height))) { error in
                XCTAssertEqual(error as? ImageError, .tooLarge(width: width, height: height))
                let message = "\(error)"
                XCTAssertTrue(message.contains("\(width)×\(height)"), message)
                XCTAssertTrue(message.contains("at most \(side) pixels per side"), message)
                XCTAssertFalse(message.contains("libpng"), "not libpng's fault: \(message)")
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
        XCTAssertTrue("\(ImageError.tooLarge(width: Int.max, height: 3))".contains("an image this large"))
    }

    func testComposeRejectsAGridPastTheLimitBeforeAllocatingIt() {
        let count = PNGWriter.maximumSide + 1
        let tiles = [Float](repeating: 0.5, count: count)
        XCTAssertThrowsError(try ImageGrid.compose(tiles: tiles, count: count, tileWidth: 1, tileHeight: 1,
                                                   columns: count, padding: 0)) { error in
            XCTAssertEqual(error as? ImageError, .tooLarge(width: count, height: 1))
        }
        XCTAssertThrowsError(try ImageGrid.compose(tiles: tiles, count: 1, tileWidth: 1, tileHeight: 1,
                                                   columns: Int.max, padding: 0)) { error in
            XCTAssertEqual(error as? ImageError, .tooLarge(width: Int.max, height: 1))
        }
        let fits = try? ImageGrid.compose(tiles: tiles, count: count - 1, tileWidth: 1, tileHeight: 1,
                                          columns: count - 1, padding: 0)
        XCTAssertEqual(fits.map { [$0.width, $0.height] }, [PNGWriter.maximumSide, 1])
    }

    func testSizeIsTheComposedGeometryAndSaturatesInsteadOfOverflowing() throws {
        for (count, columns) in [(1, 1), (3, 2), (7, 3), (10, 4)] {
            let tiles = [Float](repeating: 0, count: count * 6)
            let image = try ImageGrid.compose(tiles: tiles, count: count, tileWidth: 3, tileHeight: 2, columns: columns)
            let size = ImageGrid.size(count: count, columns: columns, tileWidth: 3, tileHeight: 2)
            XCTAssertEqual([size.width, size.height], [image.width, image.height], "\(count) in \(columns) columns")
        }
        let huge = ImageGrid.size(count: Int.max, columns: Int.max, tileWidth: 28, tileHeight: 28)
        XCTAssertEqual([huge.width, huge.height], [Int.max, 30 + 2])
        XCTAssertEqual(ImageGrid.size(count: Int.max, columns: 1, tileWidth: 28, tileHeight: 28).height, Int.max)
    }

    func testMaximumTilesIsTheLargestCountThatFits() {
        for tile in [1, 4, 28, 100] {
            // Brute force: the last n whose n·tile + (n + 1)·padding is within the limit.
            var n = 0
            while (n + 1) * tile + (n + 2) * ImageGrid.defaultPadding <= PNGWriter.maximumSide { n += 1 }
            XCTAssertEqual(ImageGrid.maximumTiles(tile: tile), n, "tile \(tile)")
        }
        XCTAssertEqual(ImageGrid.maximumTiles(tile: 28), 273)
    }

    func testSquareColumnsIsTheCeilingOfTheSquareRootForEveryInt() {
        for count in 2..<2000 {
            let c = ImageGrid.squareColumns(count: count)
            XCTAssertTrue((c - 1) * (c - 1) < count && count <= c * c, "\(count) → \(c)")
        }
        XCTAssertEqual(ImageGrid.squareColumns(count: 3_037_000_499 * 3_037_000_499), 3_037_000_499)
        XCTAssertEqual(ImageGrid.squareColumns(count: 3_037_000_499 * 3_037_000_499 + 1), 3_037_000_500)
        XCTAssertEqual(ImageGrid.squareColumns(count: Int.max), 3_037_000_500, "⌈√(2⁶³ − 1)⌉, without overflow")
    }
}
