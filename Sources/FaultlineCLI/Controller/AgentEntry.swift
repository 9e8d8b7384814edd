import Foundation

/// One agent's part of a controller command's JSON (`{"agents": [...]}`, in the agents' order): its name and URL, then
/// what it answered under `key` (`runs`, `schedules`, `run`, ...) or, when it did not answer that, `error` with the
/// reason (and `details`, the agent's own list, when it sent one).
struct AgentEntry<Value: Encodable>: Encodable {
    var agent: String
    var url: String
    var address: String?
    var key: String
    var value: Value?
    var failure: AgentFailure?

    init(_ client: AgentClient, _ key: String, value: Value?, failure: AgentFailure? = nil) {
        agent = client.endpoint.name
        url = client.endpoint.url
        address = client.endpoint.address
        self.key = key
        self.value = value
        self.failure = failure
    }

    init(_ client: AgentClient, _ key: String, _ result: Result<Value, AgentFailure>) {
        self.init(client, key, value: try? result.get(), failure: result.failure)
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.init(stringValue) }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(agent, forKey: Key("agent"))
        try container.encode(url, forKey: Key("url"))
        try container.encodeIfPresent(address, forKey: Key("address"))
        try container.encodeIfPresent(value, forKey: Key(key))
        try container.encodeIfPresent(failure?.message, forKey: Key("error"))
        if let details = failure?.details, !details.isEmpty { try container.encode(details, forKey: Key("details")) }
    }
}

/// `{"agents": [...]}`: what every controller command prints with `-o json`.
struct AgentEntries<Value: Encodable>: Encodable {
    var agents: [AgentEntry<Value>]
}
