# frozen_string_literal: true

module Groups
  class MilestonesController < ApplicationController
    actions :index, :show
  end
end
