import FaultlineCore
import Testing

/// The rate an http probe drives at each moment of the method: a fixed rate, a ramp, and spikes over either.
@Suite struct LoadShapeTests {
    func probe(_ load: String) throws -> Probe {
        let yaml = """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: shaped}
            spec:
              maxDuration: 2m
              steadyState:
                probes:
                  - name: shop
                    http: {url: "http://127.0.0.1:8080/"}
            \(load.split(separator: "\n").map { "        " + $0 }.joined(separator: "\n"))
              faults:
                - {name: cut, type: drop, to: {ports: [9999]}}
            """
        return try #require(ScenarioLoader.load(yaml: yaml, file: "shaped.yaml").spec.steadyState?.probes.first)
    }

    @Test func aFixedRateWithTwoSpikes() throws {
        let shop = try probe("rate: 50\nspike:\n  - {at: 20s, for: 5s, rate: 400}\n  - {at: 1m, for: 1s, rate: 1000}")
        #expect(shop.drivesLoad)
        #expect(shop.spikes?.count == 2)
        #expect(shop.loadRate(at: 0) == 50)
        #expect(shop.loadRate(at: 19.99) == 50)
        #expect(shop.loadRate(at: 20) == 400)
        #expect(shop.loadRate(at: 24.99) == 400)
        #expect(shop.loadRate(at: 25) == 50, "a spike ends after its 'for'")
        #expect(shop.loadRate(at: 60.5) == 1000)
        #expect(shop.loadRate(at: 61) == 50)
    }

    @Test func aRampWithASpike() throws {
        let shop = try probe("ramp: {from: 10, to: 110, over: 10s}\nspike: {at: 5s, for: 2s, rate: 500}")
        #expect(shop.loadRate(at: 0) == 10)
        #expect(shop.loadRate(at: 2.5) == 35)
        #expect(shop.loadRate(at: 6) == 500)
        #expect(shop.loadRate(at: 8) == 90)
        #expect(shop.loadRate(at: 30) == 110, "a ramp holds its last rate")
    }

    @Test func aSpikeAloneIsOpenLoopOnlyWhileItLasts() throws {
        let shop = try probe("spike: {at: 3s, for: 1s, rate: 300}")
        #expect(shop.drivesLoad)
        #expect(shop.loadRate(at: 1) == nil, "one check per interval outside the spike")
        #expect(shop.loadRate(at: 3.5) == 300)
    }

    @Test func noLoadMeansOneCheckPerInterval() throws {
        let shop = try probe("interval: 2s")
        #expect(!shop.drivesLoad)
        #expect(shop.loadRate(at: 10) == nil)
    }
}
