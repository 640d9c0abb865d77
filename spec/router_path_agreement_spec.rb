# frozen_string_literal: true

# The Rails side of the router's path agreement test (issue 6, item 1). The router
# (router/tests/path_agreement.rs) sends every request target of router/tests/data/hostile_paths.txt
# through an in-process router to cells answering with the core, and checks it is refused or
# forwarded unchanged to the cell the classifier names, with cache entries keyed on the normalized
# path. Here the same list is put to Rails: for every target, `Journey::Router::Utils.normalize_path`
# and `router.recognize` must pick the route and parameters the classifier picks, and the learn
# answer must be about the path Rails routes — equal to the normalized path when exact, a
# `/`-boundary prefix of it otherwise — so the router's normalized cache keys and trust checks
# agree with what the cell will do with the forwarded request.
RSpec.describe "router path agreement: the hostile path list against Rails" do
  list_path = File.join(REPO_ROOT, "router", "tests", "data", "hostile_paths.txt")
  table_path = File.join(CORPUS_DIR, "gitlabish-routes.json")

  # The list's escapes: \xHH is a byte, \\ a backslash (as router/tests/common/abuse_support.rs).
  def self.decode(line)
    out = +"".b
    i = 0
    while i < line.bytesize
      c = line.byteslice(i)
      if c != "\\"
        out << c
        i += 1
      elsif line.byteslice(i + 1) == "\\"
        out << "\\"
        i += 2
      elsif line.byteslice(i + 1) == "x" && line.byteslice(i + 2, 2) =~ /\A\h\h\z/
        out << line.byteslice(i + 2, 2).hex.chr
        i += 4
      else
        raise ArgumentError, "#{line.inspect}: bad escape at byte #{i}"
      end
    end
    out
  end

  # The learn answer's spelling of a path that is not UTF-8: each byte of an invalid sequence
  # as %XX, the rest unchanged (src/rules.rs, encode_invalid_utf8).
  def self.encode_invalid_utf8(path)
    utf8 = path.dup.force_encoding(Encoding::UTF_8)
    return path if utf8.valid_encoding?

    utf8.scrub { |bad| bad.bytes.map { |b| format("%%%02X", b) }.join }.b
  end

  before(:context) do
    @targets = File.readlines(list_path, chomp: true).reject { |l| l.empty? || l.start_with?("#") }.map { |l| self.class.decode(l) }
    @table = DrawRoutes.load_table(table_path)
    @route_set = DrawRoutes.draw(@table)
    @index_of = @route_set.routes.routes.each_with_index.to_h
    @classifier = Gitlab::Cells::Learn::Classifier.new(routes: File.read(table_path))
  end

  # What a server hands Rails as PATH_INFO: the origin-form target without query or fragment
  # (nil for targets that are not origin-form: the router refuses those before any routing).
  def path_info(target)
    return nil unless target.start_with?("/")

    target.split(/[?#]/, 2).first.to_s
  end

  # Valid UTF-8 with the bytes the list encodes; binary otherwise (Rails sees bytes).
  def as_request_string(path)
    utf8 = path.dup.force_encoding(Encoding::UTF_8)
    utf8.valid_encoding? ? utf8 : path
  end

  it "decodes the list the way the router's test does" do
    expect(self.class.decode("/a\\x00b\\\\c\\xFF")).to eq("/a\0b\\c\xFF".b)
    expect(@targets.size).to be > 1_000
    expect(@targets).to include("/-/profile/", "\x23/admin", "/gitlab-org/caf\xC3\xA9/-/issues".b)
  end

  it "gives, for every target, the route and parameters Rails gives, and an answer covering Rails' normalized path" do
    stats = Hash.new(0)
    failures = @targets.filter_map do |target|
      path = path_info(target)
      if path.nil?
        stats[:not_origin_form] += 1
        next
      end
      path = as_request_string(path)
      result = begin
        @classifier.learn("GET", path)
      rescue Gitlab::Cells::Learn::InvalidRequestError => e
        # Non-UTF-8 or over-long: the learn endpoint answers 400/414, the router refuses them first.
        stats[:classifier_refused] += 1
        next "#{target.inspect}: refused with an empty message" if e.message.empty?
        next if !path.dup.force_encoding(Encoding::UTF_8).valid_encoding? || path.bytesize > 8192
        # Rails' own 400: the route Rails picks has a parameter that is not UTF-8 once unescaped.
        next if e.message.include?("Rails answers 400") && RoutesRailsOracle.param_not_utf8?(RoutesRailsOracle.pick(@route_set, "GET", path))

        next "#{target.inspect}: refused (#{e.message}) though valid UTF-8 within the limit"
      end
      stats[:compared] += 1
      normalized = ActionDispatch::Journey::Router::Utils.normalize_path(path.dup)
      rails = RoutesRailsOracle.pick(@route_set, "GET", path)
      ours = @classifier.recognize("GET", path)
      rails_index = rails && @index_of.fetch(rails.route)
      same_route = (rails.nil? && ours.nil?) ||
                   (rails && ours && rails_index == ours.route.index && RoutesRailsOracle.same_params?(rails.params, ours.params))
      unless same_route
        next "#{target.inspect}: Rails #{rails ? "##{rails_index} #{rails.params}" : "no route"}; " \
             "ours #{ours ? "##{ours.route.index} #{ours.params}" : "no route"}"
      end
      answer = result.path.b
      # A path that is not UTF-8 and that no route takes as a parameter: the answer names it with
      # its invalid bytes percent-encoded (JSON text), exact and never cached.
      spelled = self.class.encode_invalid_utf8(normalized).b
      covered = if result.exact?
                  stats[:exact_equal_to_rails_normalized] += 1
                  answer == spelled
                else
                  stats[:prefix] += 1
                  answer == spelled || (answer == "/" ? spelled.start_with?("/") : spelled.start_with?("#{answer}/"))
                end
      stats[:normalized_differs_from_raw] += 1 if normalized.b != path.b
      next if covered

      "#{target.inspect}: answer #{result.path.inspect} (exact=#{result.exact?}) does not cover Rails' #{normalized.inspect}"
    end
    puts format(
      "\n  [router path agreement] %<n>d targets: %<nof>d not origin-form, %<ref>d refused by the classifier (non-UTF-8 or over-long), " \
      "%<cmp>d compared with Rails (%<norm>d change under normalize_path; %<ex>d exact answers equal to it, %<pre>d prefix answers over it); disagreements %<dis>d",
      n: @targets.size, nof: stats[:not_origin_form], ref: stats[:classifier_refused], cmp: stats[:compared],
      norm: stats[:normalized_differs_from_raw], ex: stats[:exact_equal_to_rails_normalized], pre: stats[:prefix], dis: failures.size
    )
    expect(failures).to be_empty, failures.first(20).join("\n")
    expect(stats[:compared]).to be > 1_000
    expect(stats[:normalized_differs_from_raw]).to be > 100
  end

  it "names, for the slashed and lower-case forms, the very path the router keys its cache on" do
    {
      "/-/profile/" => ["/-/profile", true],
      "/gitlab-org/gitlab/" => ["/gitlab-org/gitlab", false],
      "/gitlab-org/gitlab/-/issues/" => ["/gitlab-org/gitlab", false],
      "/groups/caf%c3%a9/-/epics" => ["/groups/caf%C3%A9", false],
      "/groups/caf%c3%A9/" => ["/groups/caf%C3%A9", false],
      "/help/" => ["/help", false]
    }.each do |path, (expected, exact)|
      result = @classifier.learn("GET", path)
      expect([result.path, result.exact?]).to eq([expected, exact]), path
      expect(ActionDispatch::Journey::Router::Utils.normalize_path(path.dup)).to start_with(expected)
    end
  end
end
