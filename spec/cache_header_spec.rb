# frozen_string_literal: true

RSpec.describe Gitlab::Cells::Learn::CacheHeader do
  let(:error) { Gitlab::Cells::Learn::InvalidHeaderError }
  let(:classifier) { Gitlab::Cells::Learn::Classifier.new(routes: File.read(File.join(CORPUS_DIR, "gitlabish-routes.json"))) }

  it "is named X-Gitlab-Cell-Cache and its error is a Learn::Error" do
    expect(described_class::NAME).to eq("X-Gitlab-Cell-Cache")
    expect(error.superclass).to eq(Gitlab::Cells::Learn::Error)
  end

  describe ".format" do
    it "writes path and cell, and exact when asked" do
      expect(described_class.format(path: "/gitlab-org/gitlab-test", cell: "cell_0")).to eq("path=/gitlab-org/gitlab-test; cell=cell_0")
      expect(described_class.format(path: "/-/profile", cell: "cell_0", exact: true)).to eq("path=/-/profile; cell=cell_0; exact")
      expect(described_class.format(path: "/", cell: "c.e-l_L9")).to eq("path=/; cell=c.e-l_L9")
    end

    it "writes the path as the request's own bytes, escapes kept, quoted when it holds ; or ," do
      expect(described_class.format(path: "/Az09-._~/", cell: "c")).to eq("path=/Az09-._~/; cell=c")
      expect(described_class.format(path: "/api/v4/projects/a%2Fb", cell: "c")).to eq("path=/api/v4/projects/a%2Fb; cell=c")
      expect(described_class.format(path: "/a;b,c=d", cell: "c")).to eq('path="/a;b,c=d"; cell=c')
      expect(described_class.format(path: "/caf%C3%A9:@+", cell: "c")).to eq("path=/caf%C3%A9:@+; cell=c")
    end

    it "refuses what it cannot advertise" do
      expect { described_class.format(path: "gitlab-org", cell: "c") }
        .to raise_error(error, 'X-Gitlab-Cell-Cache path "gitlab-org" does not start with /')
      expect { described_class.format(path: nil, cell: "c") }.to raise_error(error, "X-Gitlab-Cell-Cache path must be a String, not NilClass")
      expect { described_class.format(path: "/\xFF", cell: "c") }.to raise_error(error, /path is not valid UTF-8/)
      expect { described_class.format(path: "/a b", cell: "c") }.to raise_error(error, /contains " ", which no request path holds/)
      expect { described_class.format(path: "/a%zz", cell: "c") }.to raise_error(error, /has a bad percent escape %zz/)
      expect { described_class.format(path: "/#{"a" * 8192}", cell: "c") }
        .to raise_error(error, "X-Gitlab-Cell-Cache path is 8193 bytes, over the limit of 8192")
      ["", "cell 0", "c;ell", "c" * 65, :cell_0, nil].each do |cell|
        expect { described_class.format(path: "/", cell: cell) }
          .to raise_error(error, "X-Gitlab-Cell-Cache: invalid cell name #{cell.inspect}: expected 1 to 64 of A-Z a-z 0-9 _ . -")
      end
      expect(described_class.format(path: "/#{"a" * 8191}", cell: "c" * 64)).to start_with("path=/aaa")
    end
  end

  describe ".parse" do
    it "reads what format writes into a frozen value" do
      value = described_class.parse("path=/-/profile; cell=cell_0; exact")
      expect(value).to be_frozen
      expect([value.path, value.cell, value.exact?]).to eq(["/-/profile", "cell_0", true])
      expect(value.path).to be_frozen
      expect(value.to_h).to eq(path: "/-/profile", cell: "cell_0", exact: true)
      expect(value.to_s).to eq("path=/-/profile; cell=cell_0; exact")
      expect(value).to eq(described_class::Value.new(path: "/-/profile", cell: "cell_0", exact: true))
      expect(value.hash).to eq(described_class::Value.new(path: "/-/profile", cell: "cell_0", exact: true).hash)
      expect(value).not_to eq(described_class::Value.new(path: "/-/profile", cell: "cell_0", exact: false))
      expect(value.inspect).to include('path="/-/profile"', 'cell="cell_0"', "exact")
    end

    it "keeps the path's escapes and accepts attributes in any order with optional whitespace" do
      value = described_class.parse("cell=cell_eu0 ;\tpath=/a%2Fb%20c%c3%a9 ")
      expect([value.path, value.cell, value.exact?]).to eq(["/a%2Fb%20c%c3%a9", "cell_eu0", false])
      expect(value.path.encoding).to eq(Encoding::UTF_8)
      expect(described_class.parse("exact;path=/x;cell=c")).to be_exact
      expect(described_class.parse('path="/a;b"; cell=c').path).to eq("/a;b")
    end

    {
      "path=/a; cell=c; foo=1" => 'X-Gitlab-Cell-Cache "path=/a; cell=c; foo=1" has an unknown attribute "foo"',
      "path=/a; path=/b; cell=c" => 'X-Gitlab-Cell-Cache "path=/a; path=/b; cell=c" repeats the attribute path',
      "cell=c" => 'X-Gitlab-Cell-Cache "cell=c" has no path attribute',
      "path=/a" => 'X-Gitlab-Cell-Cache "path=/a" has no cell attribute',
      "" => "X-Gitlab-Cell-Cache is empty",
      "path=/a; cell=c;" => 'X-Gitlab-Cell-Cache "path=/a; cell=c;" has an empty attribute',
      "path; cell=c" => 'X-Gitlab-Cell-Cache "path; cell=c": path needs a value (path=...)',
      "path=/a; cell=c; exact=true" => 'X-Gitlab-Cell-Cache "path=/a; cell=c; exact=true": exact takes no value',
      "path=/a%zz; cell=c" => 'X-Gitlab-Cell-Cache path "/a%zz" has a bad percent escape %zz',
      "path=/a%4; cell=c" => 'X-Gitlab-Cell-Cache path "/a%4" has a bad percent escape %4',
      "path=/a b; cell=c" => 'X-Gitlab-Cell-Cache path "/a b" contains " ", which no request path holds (escapes are written as the request has them)',
      "path=/a,b; cell=c" => 'X-Gitlab-Cell-Cache path "/a,b" contains ",": write a path with ; or , in double quotes',
      "path=\"/a; cell=c" => 'X-Gitlab-Cell-Cache "path=\"/a; cell=c" has an unterminated quote',
      "path=a; cell=c" => 'X-Gitlab-Cell-Cache path "a" does not start with /',
      "path=\xFF; cell=c" => 'X-Gitlab-Cell-Cache is not valid UTF-8: "path=\\xFF; cell=c"',
      "path=/a; cell=a/b" => 'X-Gitlab-Cell-Cache: invalid cell name "a/b": expected 1 to 64 of A-Z a-z 0-9 _ . -'
    }.each do |value, message|
      it "refuses #{value.inspect} saying why" do
        expect { described_class.parse(value) }.to raise_error(error, message)
      end
    end

    it "refuses an over-long value and a non-String" do
      long = "path=/#{"a" * 8400}; cell=c"
      expect { described_class.parse(long) }.to raise_error(error, "X-Gitlab-Cell-Cache is #{long.bytesize} bytes, over the limit of 8320")
      within = "path=/#{"a" * 8192}; cell=c"
      expect { described_class.parse(within) }.to raise_error(error, "X-Gitlab-Cell-Cache path is 8193 bytes, over the limit of 8192")
      expect(described_class.parse("path=/#{"a" * 8191}; cell=c").path.bytesize).to eq(8192)
      expect { described_class.parse(nil) }.to raise_error(error, "X-Gitlab-Cell-Cache must be a String, not NilClass")
    end
  end

  # The one table of cases the router's parser runs too (router/tests/cache_header_grammar.rs).
  describe "the shared grammar cases (router/tests/data/cache_header_cases.json)" do
    cases = JSON.parse(File.read(File.join(REPO_ROOT, "router", "tests", "data", "cache_header_cases.json")))

    it "has cases of every kind" do
      expect(cases["parse"].size).to be > 40
      expect(cases["parse"].count { |c| c["parsed"].nil? }).to be > 20
      expect(cases["format"].size).to be > 5
    end

    cases["parse"].each do |c|
      if c["parsed"]
        it "parses #{c["header"].inspect} (#{c["why"]})" do
          expect(described_class.parse(c["header"]).to_h).to eq(c["parsed"].transform_keys(&:to_sym))
        end
      else
        it "refuses #{c["header"].inspect} (#{c["why"]})" do
          expect { described_class.parse(c["header"]) }.to raise_error(error)
        end
      end
    end

    cases["format"].each do |c|
      it "writes #{c["header"].inspect} and reads it back" do
        expect(described_class.format(path: c["path"], cell: c["cell"], exact: c["exact"])).to eq(c["header"])
        expect(described_class.parse(c["header"]).to_h).to eq(path: c["path"], cell: c["cell"], exact: c["exact"])
      end
    end

    it "refuses to write the paths no request path looks like" do
      (cases["unformattable"] + ["/#{"a" * 8192}"]).each do |path|
        expect { described_class.format(path: path, cell: "c") }.to raise_error(error), path.inspect
      end
    end
  end

  describe ".for_result" do
    it "advertises cacheable results and nothing for the others" do
      issues = classifier.learn("GET", "/gitlab-org/gitlab-test/-/issues")
      expect(described_class.for_result(issues, cell: "cell_1")).to eq("path=/gitlab-org/gitlab-test; cell=cell_1")
      profile = classifier.learn("GET", "/-/profile")
      expect(described_class.for_result(profile, cell: "cell_0")).to eq("path=/-/profile; cell=cell_0; exact")
      expect(described_class.for_result(classifier.learn("GET", "/"), cell: "cell_0")).to be_nil
      expect(described_class.for_result(classifier.learn("GET", "/dashboard"), cell: "cell_0")).to be_nil
      expect(described_class.for_result(classifier.learn("GET", "/api/v4/unknown"), cell: "cell_0")).to be_nil
    end

    it "refuses an invalid cell and skips paths too long to advertise" do
      issues = classifier.learn("GET", "/gitlab-org/gitlab-test/-/issues")
      expect { described_class.for_result(issues, cell: "no cell") }.to raise_error(error, /invalid cell name "no cell"/)
      long = Gitlab::Cells::Learn::Result.new(source: :fixed, path: "/#{"a" * 8192}", exact: true, cacheable: true)
      expect(described_class.for_result(long, cell: "cell_0")).to be_nil
    end
  end

  describe "round trip" do
    # What a request path may hold: unreserved bytes, /, the other pchars (`;` and `,` among them,
    # which the format quotes) and escapes, upper and lower case.
    let(:alphabet) do
      [*"a".."z", *"A".."Z", *"0".."9", "-", ".", "_", "~", "/", "/", ";", ",", "=", "+", ":", "@", "!", "$", "&", "'", "(", ")", "*", "%2F", "%2e", "%C3%A9",
       "%25"]
    end

    def random_path(rng, alphabet)
      "/#{Array.new(rng.rand(0..40)) { alphabet[rng.rand(alphabet.size)] }.join}"
    end

    it "parses back every formatted header, for 2,000 random paths" do
      rng = Random.new(20_241_128)
      2_000.times do
        path = random_path(rng, alphabet)
        cell = Array.new(rng.rand(1..64)) { [*"a".."z", *"A".."Z", *"0".."9", "_", ".", "-"].sample(random: rng) }.join
        exact = rng.rand(2).zero?
        value = described_class.format(path: path, cell: cell, exact: exact)
        expect(value).to match(%r{\Apath=("?)/[^ "]*\1; cell=[A-Za-z0-9_.-]+(; exact)?\z})
        parsed = described_class.parse(value)
        expect([parsed.path, parsed.cell, parsed.exact?]).to eq([path, cell, exact]), value
        expect(parsed.to_s).to eq(value)
      end
    end

    it "round-trips the prefix of every corpus request the classifier finds cacheable" do
      seen = 0
      File.foreach(File.join(CORPUS_DIR, "gitlabish-requests.jsonl")) do |line|
        vector = JSON.parse(line)
        result = classifier.learn(vector["method"], vector["path"])
        value = described_class.for_result(result, cell: "cell_1")
        next expect(result).not_to be_cacheable unless value

        seen += 1
        expect(described_class.parse(value).to_h).to eq(path: result.path, cell: "cell_1", exact: result.exact?)
      end
      expect(seen).to be > 300
    end

    it "either parses or raises InvalidHeaderError for 3,000 corrupted headers, nothing else" do
      rng = Random.new(7)
      noise = ["%", ";", "=", " ", "%G", "%4", "path=", "cell=", "exact", "\xFF".b, "é", ",", "/", '"']
      outcomes = Hash.new(0)
      3_000.times do
        value = described_class.format(path: random_path(rng, alphabet), cell: "cell_0", exact: rng.rand(2).zero?).b
        rng.rand(1..3).times do
          at = rng.rand(value.bytesize + 1)
          value = if rng.rand(2).zero?
                    value.byteslice(0,
                                    at) + noise.sample(random: rng).b + value.byteslice(at..)
                  else
                    value.byteslice(0,
                                    at) + (value.byteslice(at + 1..) || "")
                  end
        end
        value.force_encoding(Encoding::UTF_8)
        begin
          parsed = described_class.parse(value)
          expect(parsed.path).to start_with("/")
          outcomes[:parsed] += 1
        rescue Gitlab::Cells::Learn::InvalidHeaderError
          outcomes[:refused] += 1
        end
      end
      expect(outcomes[:parsed]).to be > 100
      expect(outcomes[:refused]).to be > 100
    end
  end
end
