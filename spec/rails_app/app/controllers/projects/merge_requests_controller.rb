# frozen_string_literal: true

module Projects
  class MergeRequestsController < ApplicationController
    actions :index, :show, :diffs
  end
end
