# frozen_string_literal: true

module Projects
  class TreeController < ApplicationController
    actions :show
  end
end
