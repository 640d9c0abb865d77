# frozen_string_literal: true

module Demo
  class Topology
    # Replaying the seed's flows through the routers and checking each hop against what the seed
    # says (the route, the cell, the learn requests, the trace, the redirect).
    module FlowChecks
      private

      # One learn request and one page per cell, straight to the cell (the routers' caches stay empty):
      # the flows then measure warm processes, not Ruby's first call into each code path.
      def warm_up
        children.select { |c| c.kind == :cell }.each do |c|
          Net::HTTP.start("127.0.0.1", c.port, open_timeout: 2, read_timeout: 10) do |http|
            http.get("#{Gitlab::Cells::Learn::Endpoint::MOUNT_PATH}?method=GET&path_info=%2Fhelp")
            http.get("/users/sign_in")
          end
        end
      end

      def sign_in_users(flows)
        flows.map(&:user).compact.uniq.each { |u| cookie(u) }
      end

      def replay_flow(flow)
        router = children.find { |c| c.name == flow.router } or raise ArgumentError, "flow #{flow.id}: no router #{flow.router}"
        previous = nil
        http = Net::HTTP.new("127.0.0.1", router.port)
        http.open_timeout = 2
        http.read_timeout = 30
        begin
          http.start # one keep-alive connection per flow, like a browser; if it fails, each request tries on its own
        rescue SystemCallError, IOError, Net::OpenTimeout
          nil
        end
        steps = begin
          flow.steps.each_with_index.map do |step, index|
            public_send(:"action_#{step[:before]}") if step[:before]
            path = step[:follow] ? follow(previous) : step[:path]
            user = step[:anonymous] ? nil : flow.user
            previous = if path
                         request(http, router, flow, step, index, path, user)
                       else
                         unanswered(step, index, "(redirect)", user, "nothing to follow: the previous request gave no Location")
                       end
          end
        ensure
          http.finish if http.started?
        end
        { flow: flow, steps: steps }
      end

      def follow(previous)
        return nil unless previous && previous[:location]

        URI(previous[:location]).request_uri
      rescue URI::InvalidURIError
        nil
      end

      # A step that got no HTTP answer at all (the router or a cell is down, a timeout...).
      def unanswered(step, index, path, user, reason)
        { index: index, method: step[:method], path: path, user: user, note: step[:note], status: 0, ms: 0.0, served_by: nil, trace: {},
          location: nil, leaked: [], lines: [], expect: step[:expect], failures: [reason] }
      end

      def request(http, router, flow, step, index, path, user)
        offsets = log_offsets
        req = Net::HTTPGenericRequest.new(step[:method], false, true, path)
        req["Cookie"] = cookie(user) if user
        req["User-Agent"] = "gitlab-cells-demo"
        started = now
        begin
          resp = http.request(req)
        rescue SystemCallError, IOError, Net::OpenTimeout, Net::ReadTimeout, Net::HTTPBadResponse => e
          return unanswered(step, index, path, user, "no answer from #{flow.router}: #{e.class}: #{e.message}")
        end
        ms = (now - started) * 1000
        lines = new_log_lines(offsets)
        observed = {
          index: index, method: step[:method], path: path, user: user, note: step[:note], status: resp.code.to_i, ms: ms,
          served_by: resp["X-Served-By"], trace: parse_trace(resp["X-Cells-Router-Trace"]), location: resp["Location"],
          leaked: %w[X-Gitlab-Cell-Cache X-Gitlab-Cell-Owner].select { |h| resp[h] }, lines: lines, expect: step[:expect]
        }
        observed[:failures] = check(flow, router, observed)
        observed
      end

      # `router=router_eu; cache=miss; learned_from=cell_us1; cell=cell_eu0; learn_ms=1.23`
      def parse_trace(value)
        return {} unless value

        value.split(";").to_h { |part| part.strip.split("=", 2) }
      end

      def check(flow, router, observed)
        expect = observed[:expect]
        trace = observed[:trace]
        learns = observed[:lines].select { |l| l["path"] == Gitlab::Cells::Learn::Endpoint::MOUNT_PATH }
        pages = observed[:lines].reject { |l| l["path"] == Gitlab::Cells::Learn::Endpoint::MOUNT_PATH }
        failures = []
        failures << "status #{observed[:status]}, expected #{expect[:status]}" if expect[:status] && observed[:status] != expect[:status]
        failures << "served by #{observed[:served_by].inspect}, expected #{expect[:cell]}" if expect[:cell] && observed[:served_by] != expect[:cell]
        failures << "no X-Cells-Router-Trace header" if trace.empty?
        failures << "trace names router #{trace["router"].inspect}, expected #{flow.router}" if !trace.empty? && trace["router"] != flow.router
        if !trace.empty? && trace["cell"] != observed[:served_by]
          failures << "trace says cell=#{trace["cell"].inspect} but X-Served-By is #{observed[:served_by].inspect}"
        end
        failures << "cache #{trace["cache"].inspect}, expected #{expect[:cache]}" if expect[:cache] && trace["cache"] != expect[:cache]
        failures << "the client saw internal header(s) #{observed[:leaked].join(", ")}" unless observed[:leaked].empty?
        check_learns(failures, expect, trace, learns)
        check_location(failures, expect, observed, router)
        last = pages.last
        if last.nil?
          failures << "no cell recorded the request"
        elsif last["cell"] != observed[:served_by] || last["status"] != observed[:status]
          failures << "the last cell hop was #{last["cell"]} #{last["status"]}, the client got #{observed[:served_by]} #{observed[:status]}"
        end
        misdirected = pages.select { |l| l["status"] == 421 }
        if expect[:misdirected]
          hop = misdirected.find { |l| l["cell"] == expect[:misdirected] }
          unless hop
            failures << "expected #{expect[:misdirected]} to answer 421 first, cells recorded #{pages.map { |l| "#{l["cell"]} #{l["status"]}" }.join(", ")}"
          end
          failures << "the 421 named owner #{hop["owner"].inspect}, expected #{expect[:cell]}" if hop && hop["owner"] != expect[:cell]
        elsif misdirected.any?
          failures << "unexpected 421 from #{misdirected.map { |l| l["cell"] }.join(", ")}"
        end
        failures
      end

      def check_learns(failures, expect, trace, learns)
        expected = %w[miss bypass].include?(expect[:cache]) ? 1 : 0
        answers = learns.map do |l|
          JSON.parse(l["learn"].to_s)
        rescue JSON::ParserError
          {}
        end
        # A cell naming itself, or a prefix over a reserved path (/users), is believed once a second cell
        # gives the same answer (router/README.md, Trust rules): then two learn requests, the same answer.
        confirmed = expected == 1 && learns.size == 2 && answers[0] == answers[1]
        failures << "#{learns.size} learn request(s) reached the cells, expected #{expected}" if learns.size != expected && !confirmed
        return if learns.empty?

        learn = learns.first
        if trace["learned_from"] != learn["cell"]
          failures << "the trace says learned_from=#{trace["learned_from"].inspect}, but #{learn["cell"]} answered the learn request"
        end
        answer = answers.first
        failures << "the learn answer named #{answer["cell"].inspect}, expected #{expect[:learned]}" if expect[:learned] && answer["cell"] != expect[:learned]
      end

      def check_location(failures, expect, observed, router)
        return unless expect.key?(:location)

        if observed[:location].nil?
          failures << "no Location header, expected #{expect[:location]}"
          return
        end
        uri = URI(observed[:location])
        failures << "redirect to #{uri.request_uri}, expected #{expect[:location]}" if uri.request_uri != expect[:location]
        if uri.host && "#{uri.host}:#{uri.port}" != "127.0.0.1:#{router.port}"
          failures << "redirect to host #{uri.host}:#{uri.port}, expected the router 127.0.0.1:#{router.port}"
        end
      rescue URI::InvalidURIError
        failures << "unparsable Location #{observed[:location].inspect}"
      end

      def request_log(name)
        File.join(out, "logs", "#{name}.requests.jsonl")
      end

      def log_offsets
        children.select { |c| c.kind == :cell }.to_h { |c| [c.name, File.exist?(request_log(c.name)) ? File.size(request_log(c.name)) : 0] }
      end

      def new_log_lines(offsets)
        lines = offsets.flat_map do |name, offset|
          next [] unless File.exist?(request_log(name))

          File.open(request_log(name)) do |f|
            f.seek(offset)
            f.read.each_line.map { |l| JSON.parse(l) }
          end
        end
        lines.sort_by { |l| l["t"] }
      end
    end
  end
end
