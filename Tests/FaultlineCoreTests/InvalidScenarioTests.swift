import FaultlineCore
import Foundation
import Testing

/// Each `Fixtures/invalid/NAME.yaml` must fail with exactly the lines of `NAME.errors`.
@Suite struct InvalidScenarioTests {
    static let directory = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/invalid")

    static var fixtures: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }

    @Test func thereAreAtLeastFortyFixtures() {
        #expect(Self.fixtures.count >= 40)
    }

    @Test(arguments: fixtures)
    func fixtureFailsWithExactMessages(_ name: String) throws {
        let text = try String(contentsOf: Self.directory.appendingPathComponent(name), encoding: .utf8)
        let expectedURL = Self.directory.appendingPathComponent(name.replacingOccurrences(of: ".yaml", with: ".errors"))
        let expected = try String(contentsOf: expectedURL, encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        do {
            _ = try ScenarioLoader.load(yaml: text, file: name)
            Issue.record("\(name) loaded, but it should fail with: \(expected)")
        } catch {
            #expect(error.diagnostics.map(\.description) == expected)
        }
    }
}
