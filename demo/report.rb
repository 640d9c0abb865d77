# frozen_string_literal: true

require "rack"

module Demo
  # What the replay observed, as a compact console trace and as demo-out/flows.md: one Mermaid
  # sequence diagram per flow, drawn from the hops the router's trace header and the cells' request
  # logs recorded (not from the expectations), plus a summary table.
  class Report
    LEARN_PATH = Gitlab::Cells::Learn::Endpoint::MOUNT_PATH

    # One hop: from -> to, what was sent or answered, and how long the cell took.
    Hop = Struct.new(:from, :to, :text, :reply, :ms, keyword_init: true)

    def initialize(topology)
      @topology = topology
      @results = topology.results or raise ArgumentError, "replay the flows first"
    end

    # @return [String]
    def console
      out = +"\n"
      @results.each_with_index do |r, i|
        flow = r[:flow]
        out << "── #{i + 1}. #{flow.title}  [#{flow.router}#{flow.user ? ", #{flow.user}" : ""}]\n"
        r[:steps].each do |s|
          mark = s[:failures].empty? ? "ok" : "DIFFERS"
          out << "   #{s[:method]} #{s[:path]}#{s[:user] ? "" : " (anonymous)"} -> #{s[:status]}#{s[:location] ? " #{URI(s[:location]).request_uri}" : ""}" \
                 "  #{ms(s[:ms])}  #{mark}\n"
          out << "     · #{s[:note]}\n" if s[:note]
          out << "     #{flow.router.ljust(10)} cache=#{s[:trace]["cache"] || "?"}#{s[:trace]["learn_ms"] ? " learn_ms=#{s[:trace]["learn_ms"]}" : ""}\n"
          hops(s).each do |h|
            out << "     #{h.to.ljust(10)} #{h.text} => #{h.reply}  #{ms(h.ms)}\n"
          end
          s[:failures].each { |f| out << "     !! #{f}\n" }
        end
      end
      out << "\n" << summary_text
    end

    # @return [String] Markdown with Mermaid diagrams
    def markdown
      md = +"# The seed's flows, measured\n\n"
      md << "Written by `script/demo` (`demo/topology.rb`) from what it observed: the routers' `X-Cells-Router-Trace` " \
            "headers and every request the cells recorded. Four cells (Puma + the gem) and two routers (`cells-router`) on " \
            "loopback; default (newest) cell: `#{@topology.default_cell}`. Times are wall-clock on this machine: the " \
            "client's for a whole request, each cell's own for its hop; each cell answered one learn request and one page " \
            "directly before the flows (warm processes, empty router caches).\n\n"
      md << "```mermaid\n#{topology_chart}```\n\n"
      md << "## Summary\n\n#{summary_markdown}\n"
      @results.each_with_index do |r, i|
        flow = r[:flow]
        md << "## #{i + 1}. #{flow.title}\n\n#{flow.seed}\n\n"
        md << "```mermaid\n#{sequence(r)}```\n\n"
        md << "| request | status | served by | cache | learned from | learn ms | ms | check |\n|---|---|---|---|---|---|---|---|\n"
        r[:steps].each do |s|
          md << "| `#{s[:method]} #{s[:path]}`#{s[:user] ? "" : " (anonymous)"} | #{s[:status]} | #{s[:served_by]} | #{s[:trace]["cache"]} | " \
                "#{s[:trace]["learned_from"] || ""} | #{s[:trace]["learn_ms"] || ""} | #{format("%.1f", s[:ms])} | " \
                "#{s[:failures].empty? ? "as the seed says" : s[:failures].join("; ").gsub("|", '\\|')} |\n"
        end
        md << "\n"
      end
      md
    end

    def keep_instructions
      lines = ["", "The topology stays up (Ctrl-C stops it):"]
      @topology.children.each { |c| lines << "  #{c.name.ljust(10)} http://127.0.0.1:#{c.port}  (pid #{c.pid}, log #{c.log})" }
      eu = @topology.router_url("router_eu")
      lines << ""
      lines << "Try:"
      lines << "  curl -si #{eu}/my-company/my-project | grep -i '^\\(HTTP\\|x-served-by\\|x-cells-router-trace\\)'"
      lines << "  curl -si -b '#{@topology.cookie("alice")}' #{eu}/ | grep -i '^\\(HTTP\\|location\\|x-cells\\)'"
      lines << "  curl -si '#{eu}/api/v4/cells/learn?method=GET&path_info=/gitlab-org/gitlab/-/issues'   # any cell answers; the router forwards it"
      lines << "  curl -s -c /tmp/jar -d login=bob #{eu}/users/sign_in && curl -si -b /tmp/jar #{eu}/my-company/secret | head -1"
      lines << "  curl -s #{@topology.router_internal_url("router_us")}/-/cells-router/metrics | grep cache"
      lines.join("\n")
    end

    private

    # Cell hops of a step, in the order the cells recorded them.
    def hops(step)
      step[:lines].map do |l|
        if l["path"] == LEARN_PATH
          q = Rack::Utils.parse_query(l["query"].to_s)
          Hop.new(from: "router", to: l["cell"], text: "learn #{q["method"]} #{q["path_info"]}", reply: l["learn"].to_s, ms: l["ms"])
        else
          reply = +l["status"].to_s
          reply << " X-Gitlab-Cell-Owner: #{l["owner"]}" if l["owner"]
          reply << " X-Gitlab-Cell-Cache: #{l["cache_header"]}" if l["cache_header"]
          reply << " Location: #{URI(l["location"]).request_uri}" if l["location"]
          Hop.new(from: "router", to: l["cell"], text: "#{l["method"]} #{l["path"]}#{l["query"] ? "?#{l["query"]}" : ""}", reply: reply, ms: l["ms"])
        end
      end
    end

    def sequence(result)
      flow = result[:flow]
      cells = result[:steps].flat_map { |s| s[:lines].map { |l| l["cell"] } }.uniq
      order = @topology.children.select { |c| c.kind == :cell }.map(&:name)
      d = +"sequenceDiagram\n"
      users = result[:steps].map { |s| s[:user] }.uniq
      users.each { |u| d << "    actor #{actor(u)} as #{u || "anonymous"}\n" }
      d << "    participant R as #{flow.router}\n"
      order.select { |c| cells.include?(c) }.each { |c| d << "    participant #{c}\n" }
      result[:steps].each do |s|
        a = actor(s[:user])
        d << "    Note over R: #{m(s[:note])}\n" if s[:note]
        d << "    #{a}->>R: #{m("#{s[:method]} #{s[:path]}")}\n"
        d << "    Note over R: cache #{m(s[:trace]["cache"] || "?")}\n"
        hops(s).each do |h|
          d << "    R->>#{h.to}: #{m(h.text)}\n"
          d << "    #{h.to}-->>R: #{m(h.reply)} (#{format("%.1f", h.ms)} ms)\n"
        end
        d << "    R-->>#{a}: #{m("#{s[:status]}#{s[:location] ? " → #{URI(s[:location]).request_uri}" : ""}")} (#{format("%.1f", s[:ms])} ms)\n"
      end
      d
    end

    def topology_chart
      cells = @topology.children.select { |c| c.kind == :cell }
      routers = @topology.children.select { |c| c.kind == :router }
      g = +"flowchart LR\n"
      g << "    users((users)) --> #{routers.map(&:name).join(" & ")}\n"
      routers.each { |r| g << "    #{r.name}[\"#{r.name}<br/>:#{r.port}\"]\n" }
      cells.each { |c| g << "    #{c.name}[\"#{c.name}<br/>:#{c.port}\"]\n" }
      routers.each { |r| g << "    #{r.name} --> #{cells.map(&:name).join(" & ")}\n" }
      g << "    #{cells.map(&:name).join(" & ")} --- db[(\"routes (global)\")]\n"
      g
    end

    def summary_rows
      @results.map do |r|
        steps = r[:steps]
        {
          flow: r[:flow].id, router: r[:flow].router, requests: steps.size,
          hits: steps.count { |s| s[:trace]["cache"] == "hit" },
          learns: steps.sum { |s| s[:lines].count { |l| l["path"] == LEARN_PATH } },
          misdirected: steps.sum { |s| s[:lines].count { |l| l["status"] == 421 } },
          total: steps.sum { |s| s[:ms] }, slowest: steps.map { |s| s[:ms] }.max,
          ok: steps.all? { |s| s[:failures].empty? }
        }
      end
    end

    def summary_markdown
      t = +"| flow | router | requests | cache hits | learn requests | 421 | total ms | slowest ms | result |\n"
      t << "|---|---|---|---|---|---|---|---|---|\n"
      summary_rows.each do |row|
        t << "| #{row[:flow]} | #{row[:router]} | #{row[:requests]} | #{row[:hits]} | #{row[:learns]} | #{row[:misdirected]} | " \
             "#{format("%.1f", row[:total])} | #{format("%.1f", row[:slowest])} | #{row[:ok] ? "as the seed says" : "DIFFERS"} |\n"
      end
      t
    end

    def summary_text
      rows = summary_rows
      t = +format("%-24s %-10s %8s %6s %7s %4s %9s %9s  %s\n", "flow", "router", "requests", "hits", "learns", "421", "total ms", "slowest", "result")
      rows.each do |row|
        t << format("%-24s %-10s %8d %6d %7d %4d %9.1f %9.1f  %s\n", row[:flow], row[:router], row[:requests], row[:hits], row[:learns],
                    row[:misdirected], row[:total], row[:slowest], row[:ok] ? "ok" : "DIFFERS")
      end
      t
    end

    def actor(user)
      user ? "U_#{user}" : "U_anonymous"
    end

    # Mermaid ends a statement at `;` and reads `#...;` as an entity: write both as entities.
    def m(text)
      text.to_s.gsub(/[#;]/) { |c| "##{c.ord};" }
    end

    def ms(value)
      value ? format("%.1f ms", value) : ""
    end
  end
end
