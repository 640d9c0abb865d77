# frozen_string_literal: true

require "action_dispatch"
require "rack/mock"

# Draws a corpus route table (`../shared/corpus/*-routes.json`) into a real
# `ActionDispatch::Routing::RouteSet` with the ordinary routing DSL, so specs can ask Rails' own
# router and compare. Each row becomes one `match` (or `mount` for `mounted: true`):
# - the spec is passed verbatim; `format: false` keeps specs that do not end in `(.:format)`
#   from getting one, and such specs' globs get the lazy `/.+?/` the corpus means by "no
#   requirement" (the mapper adds it only to formatted routes);
# - requirements become `constraints:` (Regexp from source and options, or the literal String);
# - `dynamic_constraints: true` rows are drawn inside `constraints(DrawRoutes::ALWAYS)`, a
#   constraint object whose `matches?` is always true (so Rails' pick is the first route its
#   router yields, and the classifier without a block agrees);
# - mounted rows mount {DrawRoutes::MOUNTED_APP}, a plain Rack app.
module DrawRoutes
  # A constraint object that always holds (a stand-in for GroupUrlConstrainer and the like).
  class AlwaysConstraint
    def matches?(_request)
      true
    end

    def inspect
      "#<DrawRoutes::ALWAYS>"
    end
  end
  ALWAYS = AlwaysConstraint.new.freeze

  # The Rack app mounted for `mounted: true` rows.
  MOUNTED_APP = ->(_env) { [200, { "Content-Type" => "text/plain" }, ["mounted"]] }

  # A corpus row that cannot be drawn faithfully.
  class DrawError < StandardError; end

  module_function

  # @return [Array<Hash>] the table in a corpus file
  def load_table(path)
    JSON.parse(File.read(path))
  end

  # @param table [Array<Hash>] corpus rows in definition order
  # @return [ActionDispatch::Routing::RouteSet] the drawn, finalized route set
  # @raise [DrawError] when the drawn routes do not reproduce the table
  def draw(table)
    rows = table.map { |row| Row.new(row) }
    route_set = ActionDispatch::Routing::RouteSet.new
    route_set.draw do
      rows.each do |row|
        if row.dynamic?
          constraints(ALWAYS) { row.apply(self) }
        else
          row.apply(self)
        end
      end
    end
    verify!(route_set, table)
    route_set
  end

  # Checks that the route set has the table's routes: same count, spec strings, verbs, and
  # mounted/dynamic shape, in the same order.
  # @raise [DrawError] naming the first difference
  def verify!(route_set, table)
    routes = route_set.routes.routes
    raise DrawError, "drew #{routes.size} routes for #{table.size} rows" unless routes.size == table.size

    routes.zip(table).each_with_index do |(route, row), i|
      got = [route.verb, route.path.spec.to_s, !route.path.anchored]
      want = [row["verb"].to_s, row["path"], row["mounted"] ? true : false]
      raise DrawError, "route #{i}: drew #{got.inspect}, table has #{want.inspect}" unless got == want
    end
    route_set
  end

  # One corpus row and how to draw it.
  class Row
    FORMAT_SUFFIX = /(?:\(\.:format\)|\.:format)\z/

    def initialize(row)
      @row = row
      @spec = row.fetch("path")
    end

    def dynamic?
      @row["dynamic_constraints"] ? true : false
    end

    # Draws the row with the mapper (`self` inside `RouteSet#draw`).
    def apply(mapper)
      if @row["mounted"]
        mapper.mount(MOUNTED_APP, at: @spec, via: via, as: @row["name"], constraints: requirements)
      else
        mapper.match(@spec, via: via, to: to, as: @row["name"], format: format_option,
                            constraints: requirements, defaults: extra_defaults)
      end
    end

    private

    def via
      verb = @row["verb"].to_s
      verb.empty? ? :all : verb.split("|").map { |v| v.downcase.to_sym }
    end

    def to
      defaults = @row["defaults"] || {}
      return MOUNTED_APP unless defaults["controller"]

      "#{defaults["controller"]}##{defaults["action"]}"
    end

    def extra_defaults
      (@row["defaults"] || {}).reject { |k, _| %w[controller action].include?(k) }.transform_keys(&:to_sym)
    end

    # nil keeps a spec that already ends in a format as it is (and lets the mapper add the lazy
    # glob default); false keeps any other spec from gaining `(.:format)`.
    def format_option
      @spec.match?(FORMAT_SUFFIX) ? nil : false
    end

    def requirements
      reqs = (@row["requirements"] || {}).to_h do |name, req|
        value = req.key?("literal") ? req["literal"] : Regexp.new(req.fetch("source"), req.fetch("options", 0))
        [name.to_sym, value]
      end
      @spec.scan(/\*(\w+)/).flatten.each { |glob| reqs[glob.to_sym] ||= /.+?/ } unless format_option.nil?
      reqs
    end
  end
end
