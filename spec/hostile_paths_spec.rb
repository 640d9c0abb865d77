# frozen_string_literal: true

# Hostile paths: the classifier must decide on the same path as Rails (normalize_path, then
# router.recognize), and a learn answer must never name a path the request is not under — the
# router relies on that to refuse poisoned answers. Every base path of the corpus vectors is
# mutated with percent-encoded separators and dots, `//`, `/./`, `/../`, trailing slashes,
# `;` parameters, case changes of escapes, NUL, non-UTF-8 bytes, over-long segments and query
# strings that look like paths.
RSpec.describe "hostile paths against Rails" do
  table_path = File.join(CORPUS_DIR, "gitlabish-routes.json")
  vectors_path = File.join(CORPUS_DIR, "gitlabish-requests.jsonl")

  before(:context) do
    @table = DrawRoutes.load_table(table_path)
    @route_set = DrawRoutes.draw(@table)
    @index_of = @route_set.routes.routes.each_with_index.to_h
    @classifier = Gitlab::Cells::Learn::Classifier.new(routes: File.read(table_path))
    bases = File.readlines(vectors_path).map { |l| JSON.parse(l)["path"] }.uniq
    @paths = bases.flat_map { |p| HostilePaths.mutations(p) }.uniq
  end

  it "generates thousands of hostile paths" do
    expect(@paths.size).to be > 5_000
  end

  it "picks Rails' route and parameters for every hostile path" do
    failures = @paths.filter_map do |path|
      if path.bytesize > 8192
        next if (begin; @classifier.recognize("GET", path); rescue Gitlab::Cells::Learn::InvalidRequestError; :refused; end) == :refused

        next "#{path[0, 60].inspect}...: #{path.bytesize} bytes accepted over the 8192-byte limit"
      end
      rails = RoutesRailsOracle.pick(@route_set, "GET", path)
      ours = begin
        @classifier.recognize("GET", path)
      rescue Gitlab::Cells::Learn::InvalidRequestError => e
        raise unless e.message.include?("Rails answers 400")

        # Serving, Rails refuses the route it picks when a parameter is not UTF-8 (400).
        next if rails && rails.params.values.any? { |v| !v.dup.force_encoding(Encoding::UTF_8).valid_encoding? }

        next "#{path.inspect}: ours 400 (#{e.message}), Rails #{rails ? "##{@index_of.fetch(rails.route)} #{rails.params}" : "no route"}"
      end
      rails_index = rails && @index_of.fetch(rails.route)
      next if rails.nil? && ours.nil?
      next if rails && ours && rails_index == ours.route.index && RoutesRailsOracle.same_params?(rails.params, ours.params)

      "#{path.inspect}: Rails #{rails ? "##{rails_index} #{rails.params}" : "no route"}; ours #{ours ? "##{ours.route.index} #{ours.params}" : "no route"}"
    end
    puts format("\n  [hostile paths] %d paths compared with Rails; %d disagreements", @paths.size, failures.size)
    expect(failures).to be_empty, failures.first(20).join("\n")
  end

  it "answers only paths the normalized request is under, or refuses the request" do
    refused = 0
    failures = @paths.filter_map do |path|
      result = begin
        @classifier.learn("GET", path)
      rescue Gitlab::Cells::Learn::InvalidRequestError => e
        refused += 1
        next "#{path.inspect}: refused with an empty message" if e.message.empty?

        next
      end
      normalized = ActionDispatch::Journey::Router::Utils.normalize_path(path.split("?", 2).first.to_s)
      # An answer for a path that is not UTF-8 names it with the invalid bytes percent-encoded.
      normalized = normalized.dup.force_encoding(Encoding::UTF_8).scrub { |bad| bad.bytes.map { |b| format("%%%02X", b) }.join }
      ok = if result.exact?
             result.path.b == normalized.b
           else
             normalized.b == result.path.b || normalized.b.start_with?("#{result.path.b.chomp("/")}/")
           end
      ok ? nil : "#{path.inspect}: answer #{result.path.inspect} (exact=#{result.exact?}) is not over #{normalized.inspect}"
    end
    puts format("  [hostile paths] %d learn answers checked against Rails' normalize_path; %d refused (non-UTF-8 or over-long)", @paths.size, refused)
    expect(refused).to be > 0
    expect(failures).to be_empty, failures.first(20).join("\n")
  end

  # As Rails serves it: the route it picks gets a parameter that is not UTF-8, a 400.
  it "refuses a path whose parameter is not UTF-8 with a precise error" do
    expect { @classifier.learn("GET", "/gitlab-org/\xFF/-/issues".b) }
      .to raise_error(Gitlab::Cells::Learn::InvalidRequestError, /path parameter '\w+' of route \d+ is not valid UTF-8 once unescaped \(Rails answers 400/)
  end
end

# Mutations of a request path that attackers and broken clients send.
module HostilePaths
  module_function

  def mutations(path)
    segs = path.split("/", -1)
    out = [
      path,
      "#{path}/", "#{path}//", "/#{path}", path.gsub("/", "//"),
      path.sub(%r{\A/([^/]+)/}, '/\1%2F'), path.sub(%r{\A/([^/]+)/}, '/\1%2f'),
      path.sub(%r{/([^/]+)\z}, '/./\1'), path.sub(%r{/([^/]+)\z}, '/../\1'),
      "#{path}/..", "#{path}/.", "#{path}/%2e%2e", "#{path}/%2E%2E/admin", path.sub(%r{\A/}, "/%2e/"),
      "#{path};jsessionid=1", path.sub(%r{\A(/[^/]+)}, '\1;x=1'),
      "#{path}?/admin/users", "#{path}?path=/../../admin", "#{path}#/admin",
      "#{path}%00", "#{path}\0", path.sub(%r{\A(/[^/]+)}, "\\1\0"),
      "#{path}/\xFF".b, path.sub(%r{\A/}, "/\xC3\x28".b),
      "#{path}/#{"a" * 300}", path.sub(%r{\A/([^/]+)}) { "/#{Regexp.last_match(1) * 40}" },
      path.upcase, path.gsub("-", "%2D"), path.gsub("-", "%2d"), path.gsub(".", "%2E"),
      "#{path}/%5C..%5Cadmin", "#{path}\\..\\admin", "#{path} /x", "#{path}%20"
    ]
    out << "/#{segs[1]}/#{segs[2..].join("%2F")}" if segs.size > 3
    out.map { |p| p.dup.force_encoding(Encoding::BINARY).valid_encoding? ? p : p.b }
  end
end
